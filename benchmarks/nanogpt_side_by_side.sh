#!/bin/bash
# nanoGPT's CPU recipe, side by side: the PyTorch eager reference, then mlxt as two local ranks,
# then mlxt as one process, then nanoGPT's validation-loss estimate for both mlxt runs.
# Writes runs/nanogpt-*.log and runs/nanogpt-*.json (process times from /usr/bin/time -v).
#   bash benchmarks/nanogpt_side_by_side.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
stamp() { echo "$1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
stamp start
( cd benchmarks && /usr/bin/time -v ../.venv/bin/python nanogpt_torch.py --out ../runs/nanogpt-torch.json ) \
    > runs/nanogpt-torch.log 2>&1
stamp "torch done"
/usr/bin/time -v .venv/bin/mlxt train --config configs/shakespeare-nanogpt.toml --workers 2 \
    --run-dir runs/shakespeare-nanogpt-2w --overwrite > runs/nanogpt-mlxt-2w.log 2>&1
stamp "mlxt, two ranks done"
/usr/bin/time -v .venv/bin/mlxt train --config configs/shakespeare-nanogpt.toml --overwrite \
    > runs/nanogpt-mlxt.log 2>&1
stamp "mlxt, one process done"
.venv/bin/python benchmarks/nanogpt_val.py runs/shakespeare-nanogpt > runs/nanogpt-mlxt-val.json
.venv/bin/python benchmarks/nanogpt_val.py runs/shakespeare-nanogpt-2w > runs/nanogpt-mlxt-2w-val.json
grep -h "Elapsed" runs/nanogpt-torch.log runs/nanogpt-mlxt-2w.log runs/nanogpt-mlxt.log
cat runs/nanogpt-torch.json runs/nanogpt-mlxt-2w-val.json runs/nanogpt-mlxt-val.json
