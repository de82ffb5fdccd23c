#!/bin/bash
# Short-budget ablations of the English -> German Tatoeba recipe (README, "What each choice buys"):
# the recipe of configs/tatoeba-en-de.toml for 500 steps of at most 2,048 padded tokens, changing
# one thing per run, each scored by beam search on the whole test split. One run after another;
# MLXT_NUM_THREADS=1 keeps each to one core (the README's runs shared the machine with another job).
#   bash examples/tatoeba_ablations.sh          # writes runs/ablate-*/ and runs/ablate-*-eval.log
set -euo pipefail
cd "$(dirname "$0")/.."
export MLXT_NUM_THREADS=${MLXT_NUM_THREADS:-1}
COMMON=(--config configs/tatoeba-en-de.toml --set train.steps=500 --set train.warmup_steps=125
        --set data.max_tokens=2048 --set train.eval_every=500 --set train.save_every=500
        --set train.keep_last=1 --set train.bleu_samples=0 --set train.max_minutes=15 --overwrite --quiet)
run() {
  local name=$1; shift
  echo "ablation $name start $(date -u +%T)"
  .venv/bin/mlxt train "${COMMON[@]}" --run-dir "runs/ablate-$name" "$@"
  .venv/bin/mlxt evaluate "runs/ablate-$name" --split test --beam 5 --checkpoint last > "runs/ablate-$name-eval.log"
  echo "ablation $name: $(grep -E '^(bleu|chrf) ' "runs/ablate-$name-eval.log" | tr -s ' \n' ' ')"
}
mkdir -p runs
run base
run no-smoothing --set train.label_smoothing=0.0
run no-warmup --set train.warmup_steps=0
run no-dropout --set model.dropout=0.0
run no-sharing --set model.share_embeddings=false --set model.tie_output=false
run base-seed1 --set train.seed=1
