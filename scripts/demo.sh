#!/usr/bin/env bash
# `make demo`: train a small German->English translator on Tatoeba's sentences for a few minutes
# on CPU, evaluate it on held-out sentences, translate a handful, draw its curves; then a short
# character-level Shakespeare LM and a sample. Offline (no network, no local Tatoeba copy) it
# trains on the Ding dictionary's example sentences instead.
#
# Knobs (environment): DEMO_TRANSLATE_MINUTES (default 6), DEMO_LM_MINUTES (default 2),
# DEMO_OUT (default runs/demo), PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
OUT=${DEMO_OUT:-runs/demo}
T_MIN=${DEMO_TRANSLATE_MINUTES:-6}
LM_MIN=${DEMO_LM_MINUTES:-2}
SHARED=${MLXT_SHARED_DATA:-../shared/data}
DING=/usr/share/trans/de-en
# At most two threads (BLAS and mlxt's kernels): these small models gain little from more, and
# spinning threads slow everything down badly when the cores are shared. (On the README's idle
# 2-core machine two threads made 2,408 steps of the Tatoeba config in its 6 minutes, 6.7 a second.)
export MLXT_NUM_THREADS=${MLXT_NUM_THREADS:-$(( $(nproc 2>/dev/null || echo 1) >= 2 ? 2 : 1 ))}
mlxt() { "$PY" -m mlxt "$@"; }
say() { printf '\n== %s\n' "$*"; }

mkdir -p "$OUT"
start=$(date +%s)

# -- 1. the corpus ---------------------------------------------------------------------------
# Tatoeba's everyday German-English sentences (~7 MB, downloaded once into the cache and
# sha256-checked; a local copy in $SHARED is used as a mirror). Offline without a copy, the
# example sentences of Debian's Ding dictionary, which give a much weaker translator.
if [ -z "${MLXT_DATA_MIRROR:-}" ] && [ -f "$SHARED/tatoeba-deu-eng/deu-eng.zip" ]; then
    export MLXT_DATA_MIRROR=$SHARED
fi
TR_CONFIG=configs/translate-tatoeba-de-en.toml
say "corpus: Tatoeba German-English (mlxt data fetch tatoeba-deu-eng)"
if ! fetch_err=$(mlxt data fetch tatoeba-deu-eng 2>&1 >/dev/null); then
    printf '%s\n' "$fetch_err" >&2
    echo "Tatoeba cannot be had here; falling back to the Ding dictionary's example sentences (a weaker translator)"
    TR_CONFIG=configs/translate-ding-de-en.toml
    if [ ! -f "$DING" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "installing Debian's German-English dictionary: apt-get install -y trans-de-en (a 6 MB download; the demo reads $DING)"
            if ! log=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q trans-de-en 2>&1); then
                echo "apt-get install trans-de-en failed; its last lines:" >&2
                printf '%s\n' "$log" | tail -n 8 | sed 's/^/    /' >&2
                echo "(no package list yet? run 'apt-get update' first)" >&2
            fi
        else
            echo "The Ding dictionary is not installed and this is not root; to use it run:  sudo apt-get install trans-de-en"
        fi
    fi
    if [ ! -f "$DING" ]; then
        echo "mlxt demo: no German-English corpus available: connect to the network (Tatoeba), or" >&2
        echo "install the Ding dictionary with:  sudo apt-get install trans-de-en   (then run make demo again)" >&2
        exit 2
    fi
    say "corpus: ding-de-en ($DING)"
fi

# -- 2. the translator -----------------------------------------------------------------------
TR="$OUT/translate-de-en"
# The config's learning rate follows a time budget (schedule_unit = "time"): warmup and decay
# spread over the $T_MIN minutes, so the run ends annealed on any machine.
say "training a small German->English Transformer for $T_MIN minutes ($TR_CONFIG)"
mlxt train --config "$TR_CONFIG" --run-dir "$TR" --overwrite --set "train.max_minutes=$T_MIN"

# The last checkpoint, the end of the cosine decay: a short run ends annealed there.
say "BLEU on the held-out test sentences (beam 4)"
mlxt evaluate --split test --beam 4 --checkpoint last --output "$TR/eval-test.json" "$TR"

say "a handful of translations (beam 4)"
sentences=(
    "Ich habe keine Ahnung."
    "Das ist nicht meine Schuld."
    "Wir müssen jetzt gehen."
    "Er hat mir das Buch gegeben."
    "Kannst du mir helfen?"
    "Sie wohnt in einer kleinen Stadt."
)
# `mlxt translate` prints one line per sentence, in order; put each beside its source
# (padding counted in characters, not bytes, for the umlauts).
translated=$(mlxt translate --beam 4 --checkpoint last "$TR" "${sentences[@]}")
mapfile -t translations <<< "$translated"
for i in "${!sentences[@]}"; do
    s=${sentences[$i]}
    printf '%s%*s -> %s\n' "$s" $(( 34 - ${#s} > 0 ? 34 - ${#s} : 0 )) "" "${translations[$i]:-}"
done

# -- 3. the Shakespeare LM -------------------------------------------------------------------
LM="$OUT/shakespeare-char"
lm_data=()
if [ -f "$SHARED/tinyshakespeare/input.txt" ]; then
    lm_data=(--set "data.source=$SHARED/tinyshakespeare")
elif ! "$PY" - <<'PY' 2>/dev/null
from mlxt.data.corpora import get_corpus
ok, _ = get_corpus("tinyshakespeare").availability()
raise SystemExit(0 if ok else 1)
PY
then
    echo "tiny Shakespeare is not available offline; using the built-in 'shakespeare' corpus instead"
    lm_data=(--set data.corpus=shakespeare)
fi
say "training nanoGPT's baby GPT on Shakespeare characters for about $LM_MIN minutes (configs/shakespeare-char.toml)"
mlxt train --config configs/shakespeare-char.toml --run-dir "$LM" --overwrite \
    --set "train.max_minutes=$LM_MIN" --set train.compile=false "${lm_data[@]}"

say "a sample (mlxt generate)"
mlxt generate --prompt "ROMEO:" --max-tokens 300 --temperature 0.8 --seed 0 "$LM"
echo

# -- 4. where things are ---------------------------------------------------------------------
say "done in $(( $(date +%s) - start )) s; everything is under $OUT/"
cat <<TXT
  translator run:     $TR   (checkpoints/, config.toml, tokenizer/, metrics.jsonl)
  translator curves:  $TR/curves.png
  test-set report:    $TR/eval-test.json
  language model run: $LM
  LM curves:          $LM/curves.png
Try:  source .venv/bin/activate        # puts \`mlxt\` on PATH (or write .venv/bin/mlxt)
      mlxt translate $TR "Wo ist der Bahnhof?" --checkpoint last
      mlxt generate $LM --prompt "JULIET:" --max-tokens 200
      (README.md, "Workflow", for the rest)
TXT
