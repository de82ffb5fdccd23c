"""The corrected tutorial (`examples/seed_walkthrough.py`) runs, shortened, and prints its sections,
shapes and loss lines."""

from __future__ import annotations

import math
import re
import subprocess
import sys


def test_walkthrough_runs_shortened(repo_root):
    script = repo_root / "examples" / "seed_walkthrough.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--epochs", "2", "--print-every", "1"],
        cwd=repo_root, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout

    headers = [int(n) for n in re.findall(r"^(\d)\. ", out, re.M)]
    assert headers == [2, 3, 4, 5, 6, 7, 8]
    assert "positional_encoding(10, 512).shape = (10, 512)" in out
    assert "(32, 10, 512) -> (32, 10, 512)" in out
    assert re.search(r"RegressionTransformer\(d_model=512, heads=8, d_ff=2048, 6\+6 layers\): "
                     r"\(32, 10, 512\) -> \(32, 10, 1\)", out)

    losses = re.findall(r"^Epoch (\d+), Loss: (\S+)", out, re.M)
    assert [int(epoch) for epoch, _ in losses] == [0, 1]
    values = [float(loss) for _, loss in losses]
    assert all(math.isfinite(v) and v > 0 for v in values)
    final = re.search(r"^Loss without dropout after 2 epochs: (\S+)", out, re.M)
    assert final and math.isfinite(float(final.group(1)))


def test_walkthrough_rejects_bad_flags(repo_root):
    script = repo_root / "examples" / "seed_walkthrough.py"
    proc = subprocess.run([sys.executable, str(script), "--epochs", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--epochs" in proc.stderr
