// The mlxt web page: talks to the server's own API (/languages, /translate, /v1/models,
// /v1/completions) and shows every error the server answers.
"use strict";
const $ = (id) => document.getElementById(id);
let languages = [];
let settings = {};
let running = null;

function showError(where, message) {
  const box = $(where);
  box.textContent = message || "";
  box.hidden = !message;
}

async function call(path, body) {
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) { headers.Authorization = "Bearer " + key; }
  const response = await fetch(path, body === undefined ? { headers } :
    { method: "POST", headers, body: JSON.stringify(body) });
  return response;
}

async function errorOf(response) {
  let text = await response.text();
  try {
    const body = JSON.parse(text);
    text = typeof body.error === "string" ? body.error : (body.error && body.error.message) || text;
  } catch (e) { /* not JSON: keep the text */ }
  return `${response.status}: ${text}`;
}

function fillTargets() {
  const source = $("source").value;
  const entry = languages.find((l) => l.code === source);
  const previous = $("target").value;
  $("target").replaceChildren(...(entry ? entry.targets : []).map((code) => {
    const name = (languages.find((l) => l.code === code) || { name: code }).name;
    return new Option(`${name} (${code})`, code);
  }));
  if ([...$("target").options].some((o) => o.value === previous)) { $("target").value = previous; }
}

function countChars() {
  const n = $("text").value.length;
  $("count").textContent = settings.charLimit ? `${n} / ${settings.charLimit}` : `${n}`;
}

async function translate() {
  const text = $("text").value;
  showError("translate-error", "");
  if (!text.trim()) { $("translation").textContent = ""; $("alts").replaceChildren(); return; }
  $("go").disabled = true;
  try {
    const alternatives = parseInt($("alternatives").value || "0", 10);
    const response = await call("/translate", { q: text, source: $("source").value, target: $("target").value,
      format: "text", alternatives, api_key: $("api-key").value.trim() || undefined });
    if (!response.ok) { showError("translate-error", await errorOf(response)); return; }
    const body = await response.json();
    $("translation").textContent = body.translatedText;
    $("alts").replaceChildren(...(body.alternatives || []).map((a) => {
      const li = document.createElement("li"); li.textContent = a; return li;
    }));
  } catch (e) {
    showError("translate-error", "cannot reach the server: " + e.message);
  } finally {
    $("go").disabled = false;
  }
}

function number(id, parse) {
  const value = $(id).value.trim();
  return value === "" ? undefined : parse(value);
}

async function generate() {
  showError("complete-error", "");
  $("generated").textContent = $("prompt").value;
  const controller = new AbortController();
  running = controller;
  $("generate").disabled = true; $("stop").disabled = false;
  try {
    const headers = { "Content-Type": "application/json" };
    const key = $("api-key").value.trim();
    if (key) { headers.Authorization = "Bearer " + key; }
    const response = await fetch("/v1/completions", { method: "POST", headers, signal: controller.signal,
      body: JSON.stringify({ model: $("model").value, prompt: $("prompt").value, stream: true,
        max_tokens: number("max-tokens", parseInt), temperature: number("temperature", parseFloat),
        top_p: number("top-p", parseFloat), top_k: number("top-k", parseInt), seed: number("seed", parseInt) }) });
    if (!response.ok) { showError("complete-error", await errorOf(response)); return; }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) { break; }
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const data = event.replace(/^data: /, "");
        if (data === "[DONE]") { continue; }
        const chunk = JSON.parse(data);
        if (chunk.error) { showError("complete-error", chunk.error.message); continue; }
        $("generated").textContent += chunk.choices[0].text;
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") { showError("complete-error", "cannot reach the server: " + e.message); }
  } finally {
    running = null;
    $("generate").disabled = false; $("stop").disabled = true;
  }
}

async function start() {
  try {
    settings = await (await fetch("/frontend/settings")).json();
    languages = await (await fetch("/languages")).json();
    const models = (await (await fetch("/v1/models")).json()).data;
    $("key-box").hidden = !settings.keyRequired;
    $("alternatives").max = settings.alternativesLimit;
    const sources = languages.filter((l) => l.targets.length);
    $("source").replaceChildren(...sources.map((l) => new Option(`${l.name} (${l.code})`, l.code)));
    fillTargets();
    $("translate").hidden = sources.length === 0;
    $("model").replaceChildren(...models.map((m) => new Option(m.id, m.id)));
    $("max-tokens").max = settings.maxTokens;
    $("complete").hidden = models.length === 0;
    $("nothing").hidden = sources.length > 0 || models.length > 0;
    $("status").textContent = `${sources.length ? languages.length + " languages" : ""}` +
      `${sources.length && models.length ? ", " : ""}${models.length ? models.length + " language model(s)" : ""}`;
    countChars();
  } catch (e) {
    $("status").textContent = "cannot reach the server: " + e.message;
  }
}

$("source").addEventListener("change", fillTargets);
$("swap").addEventListener("click", () => {
  const s = $("source").value, t = $("target").value;
  if ([...$("source").options].some((o) => o.value === t)) {
    $("source").value = t; fillTargets();
    if ([...$("target").options].some((o) => o.value === s)) { $("target").value = s; }
  }
});
$("text").addEventListener("input", countChars);
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { translate(); } });
$("go").addEventListener("click", translate);
$("generate").addEventListener("click", generate);
$("stop").addEventListener("click", () => { if (running) { running.abort(); } });
start();
