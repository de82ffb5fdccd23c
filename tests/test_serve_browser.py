"""The web page of `mlxt serve` in a real headless browser (Debian's chromium driven by
Selenium): pick the pair, type a sentence, see the translation; an error shown in the page; a
streamed completion. Writes a screenshot (``serve_page.png`` under the test's temporary
directory, or under ``$MLXT_SCREENSHOT_DIR`` when set)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from serve_helpers import LiveServer, tiny_runs

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")


def install_browser() -> str | None:
    """Installs Debian's chromium and chromium-driver when missing (root with apt-get only);
    None when they are there, else why not."""
    if all(Path(p).exists() for p in CHROMIUM):
        return None
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return "chromium and chromium-driver are not installed, and cannot be here (needs root and apt-get)"
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-500:]}"
    return None if all(Path(p).exists() for p in CHROMIUM) else "chromium installed but not found at /usr/bin"


@pytest.fixture(scope="session")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    why = install_browser()
    if why:
        pytest.skip(why)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1200,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMIUM[1]), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tiny_runs(tmp_path_factory)
    with LiveServer([runs / "s2s", f"{runs / 's2s'}:de-fr", runs / "lm"]) as live:
        yield live


def test_page_translates_shows_errors_and_generates(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(server.url + "/")
    wait.until(lambda d: d.find_element(By.ID, "source").find_elements(By.TAG_NAME, "option"))
    assert browser.title == "mlxt"
    Select(browser.find_element(By.ID, "source")).select_by_value("en")
    Select(browser.find_element(By.ID, "target")).select_by_value("de")
    sentence = "the small dog sees a cat"
    browser.find_element(By.ID, "text").send_keys(sentence)
    browser.find_element(By.ID, "go").click()
    wait.until(lambda d: d.find_element(By.ID, "translation").text)
    expected = httpx.post(server.url + "/translate", json={"q": sentence, "source": "en", "target": "de"}).json()
    # the page keeps the translation's whitespace (pre-wrap); a tiny model may end it with a space
    assert browser.find_element(By.ID, "translation").text.strip() == expected["translatedText"].strip()
    assert browser.find_element(By.ID, "count").text.startswith(f"{len(sentence)} / ")

    alternatives = browser.find_element(By.ID, "alternatives")
    alternatives.clear()
    alternatives.send_keys("9")
    browser.find_element(By.ID, "go").click()
    error = browser.find_element(By.ID, "translate-error")
    wait.until(lambda d: error.is_displayed())
    assert error.text.startswith("400: ") and "alternatives" in error.text
    alternatives.clear()
    alternatives.send_keys("0")

    prompt = "the red"
    browser.find_element(By.ID, "prompt").send_keys(prompt)
    for field, value in (("temperature", "0"), ("max-tokens", "30")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "generate").click()
    generated = browser.find_element(By.ID, "generate")
    wait.until(lambda d: generated.is_enabled() and len(d.find_element(By.ID, "generated").text) > len(prompt))
    reference = httpx.post(server.url + "/v1/completions",
                           json={"model": "lm", "prompt": prompt, "max_tokens": 30, "temperature": 0}).json()
    shown = browser.execute_script("return document.getElementById('generated').textContent")
    assert shown == prompt + reference["choices"][0]["text"]

    out = Path(os.environ.get("MLXT_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(out / "serve_page.png"))
    assert (out / "serve_page.png").read_bytes()[:4] == b"\x89PNG"
