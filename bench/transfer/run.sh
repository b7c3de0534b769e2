#!/usr/bin/env bash
# The transfer-learning table (issue 12 item 6) and the GPT-vs-BERT rows (issue 14 item 5): every row is ONE sharpformer
# command whose last stdout line is a JSON result (task, split, method, model, init, seed, metrics, budget, seconds,
# cpu_seconds). Rows are kept in $OUT/rows/<name>.json, so a rerun skips finished rows (delete a file to redo it);
# $OUT/results.jsonl gathers them in table order and $OUT/table.md is `sharpformer results-table` of that file.
#
# Usage: bench/transfer/run.sh MODEL_DIR [GPT_DIR]
#   MODEL_DIR  a pretrained BERT (masked LM) directory, e.g. models/sharpformer-mini-uncased
#   GPT_DIR    optional: a GPT-2 directory pretrained on the same data and compute (adds the GPT-vs-BERT rows)
# Environment (defaults in brackets):
#   OUT [runs/transfer]   DATA [$SHARPFORMER_DATA, else ../shared/data]   THREADS [2]   SEEDS ["0"]   NICE [5]
#   CLI [./sharpformer]   the CLI to run: the launcher (builds when sources changed) or a built Sharpformer.Cli.dll
#   ADAPTED [made here]   a domain-adapted copy of MODEL_DIR; by default `pretrain --init MODEL_DIR` on the three tasks'
#                         train text for ADAPT_STEPS [500] updates (batch 32 × 128 tokens ≈ 2 M tokens, ~1.3 passes), written to $OUT/adapted
#   SKIP_ADAPT=1          leave the domain-adaptation rows out
#   BERT_LOG, GPT_LOG [<dir>/metrics.jsonl]  the pretraining runs' metrics.jsonl: their last held-out evaluation becomes a
#                         "pretraining" row (MLM accuracy for BERT, next-token accuracy and perplexity for GPT-2); when absent,
#                         the "evaluation loss/accuracy (step N)" rows of the model card; skipped when neither exists
#   ONLY [all]            an extended regex: run only the rows (and the "adapt" and "generations" steps) whose names match, so two streams can
#                         share the work on a 2-core machine, e.g. ONLY='^(ag|emotion)-' THREADS=1 and ONLY='conll|adapt' THREADS=1;
#                         each stream's table holds the rows finished so far
#   QUICK=1               smoke test of the machinery: 64 training examples, 1 epoch, the first 200 test texts /
#                         100 test sentences, 20 adaptation steps (numbers meaningless; rows marked by train_examples)
#
# Budgets (the same for a pretrained row and its --random-init control; all AdamW, linear decay, weight decay 0.01,
# warmup 10 %, dropout as in the checkpoint, the final epoch's test score — no model selection on test):
#   AG News   train_subset.csv (14,552 texts) → test.csv (7,600): 1 epoch, batch 32, lr 3e-4, max length 128
#   emotion   train.txt (16,000 tweets) → test.txt (2,000):       2 epochs, batch 32, lr 3e-4, max length 64
#   CoNLL-03  hf_iob2 train (14,041 sentences) → test (3,453):    4 epochs, batch 32, lr 3e-4, max length 128, entity F1 (seqeval)
#             (the shipped sharpformer-mini-ner recipe). lr 3e-4 rather than BERT-paper's 2e-5..1e-4: the mini model is
#             4 layers × 256, and a 1-epoch probe at 1e-4 on an early checkpoint was still far from converged. Fixed before
#             any test score was seen; no search.
#   features  frozen encoder, masked-mean pooling (GPT: last non-pad token), max length 128, standardised, L-BFGS LR C = 1
#   TF-IDF    scikit-learn TfidfVectorizer defaults + LogisticRegression(C = 1, max_iter = 1000); for CoNLL its per-word
#             counterpart, "lexical+lr": binary lexical features of the word and its neighbours + the same regression
# Override per task with AG_EPOCHS, EMO_EPOCHS, NER_EPOCHS, BATCH, LR.
# Cost with the mini BERT (4 layers, hidden 256, vocab 16k), process CPU time scaled from 512-1,024-example runs of each verb
# (AMD EPYC, 2 vCPUs, heavily shared, 2026-12-03): fine-tuning ≈ 0.05 CPU-s per AG text, 0.02 per tweet or CoNLL sentence
# per epoch → AG ≈ 14, emotion ≈ 12, CoNLL ≈ 11 CPU-min per row; features ≈ 2-6 CPU-min per row (inference only);
# TF-IDF 0.1; adaptation ≈ 15-25. One seed: ≈ 150 CPU-min for the BERT rows, ≈ 40 more with a GPT_DIR of the same size.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
model="$1"; gpt="${2:-}"
[ -f "$model/config.json" ] || { echo "error: $model/config.json not found (MODEL_DIR must be a BERT model directory)" >&2; exit 2; }
[ -z "$gpt" ] || [ -f "$gpt/config.json" ] || { echo "error: $gpt/config.json not found (GPT_DIR must be a GPT-2 model directory)" >&2; exit 2; }
data="${DATA:-${SHARPFORMER_DATA:-$here/../shared/data}}"
out="${OUT:-$here/runs/transfer}"
threads="${THREADS:-2}"; seeds="${SEEDS:-0}"; nice_level="${NICE:-5}"
batch="${BATCH:-32}"; lr="${LR:-3e-4}"
ag_epochs="${AG_EPOCHS:-1}"; emo_epochs="${EMO_EPOCHS:-2}"; ner_epochs="${NER_EPOCHS:-4}"
only="${ONLY:-}"
want() { [ -z "$only" ] || [[ "$1" =~ $only ]]; }
adapt_steps="${ADAPT_STEPS:-500}"
mkdir -p "$out/rows" "$out/logs" "$out/models"

ag_train="$data/ag_news/train_subset.csv"; ag_test="$data/ag_news/test.csv"
emo_train="$data/emotion/train.txt"; emo_test="$data/emotion/test.txt"
ner_train="$data/conll2003/hf_iob2/train.txt"; ner_test="$data/conll2003/hf_iob2/test.txt"
limit=(); feature_limit=()
if [ "${QUICK:-0}" = 1 ]; then
  # Smaller test files under the same names (the result's split is the file name), and few training examples.
  q="$out/quick-data"; mkdir -p "$q/ag_news" "$q/emotion" "$q/conll2003"
  head -n 200 "$ag_test" > "$q/ag_news/test.csv"; ag_test="$q/ag_news/test.csv"
  head -n 200 "$emo_test" > "$q/emotion/test.txt"; emo_test="$q/emotion/test.txt"
  awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 100' "$ner_test" > "$q/conll2003/test.txt"; ner_test="$q/conll2003/test.txt"
  limit=(--limit 64); feature_limit=(--limit 200)
  ag_epochs=1; emo_epochs=1; ner_epochs=1; adapt_steps=20
fi

cli="${CLI:-$here/sharpformer}"
sf() {
  case "$cli" in
    *.dll) nice -n "$nice_level" dotnet "$cli" "$@" ;;
    *) nice -n "$nice_level" "$cli" "$@" ;;
  esac
}
order=()

# row NAME COMMAND…: runs the command unless $out/rows/NAME.json exists, keeps its last stdout line as the row.
row() {
  local name="$1"; shift
  order+=("$name")
  local file="$out/rows/$name.json"
  if [ -s "$file" ]; then echo "skip $name (done: $file)" >&2; return 0; fi
  if ! want "$name"; then echo "skip $name (not in ONLY=$only)" >&2; return 0; fi
  echo "run  $name: $*" >&2
  if ! sf "$@" > "$out/logs/$name.out" 2> "$out/logs/$name.err"; then
    echo "FAILED $name (see $out/logs/$name.err)" >&2; return 1
  fi
  local last; last="$(tail -n 1 "$out/logs/$name.out")"
  case "$last" in
    '{"task":'*) printf '%s\n' "$last" > "$file.tmp" && mv "$file.tmp" "$file" ;;
    *) echo "FAILED $name: the last line is not a result line (see $out/logs/$name.out)" >&2; return 1 ;;
  esac
}

common=(--json --no-progress --threads "$threads")
ft() { # ft NAME MODEL TASK TRAIN TEST EPOCHS MAXLEN SEED [extra…]: a text-classifier fine-tuning row
  local name="$1" m="$2" task="$3" train="$4" test="$5" epochs="$6" len="$7" seed="$8"; shift 8
  row "$name" train text-classifier --model "$m" --task "$task" --train "$train" --eval "$test" --output "$out/models/$name" \
    --epochs "$epochs" --batch-size "$batch" --learning-rate "$lr" --warmup-ratio 0.1 --weight-decay 0.01 --max-length "$len" \
    --seed "$seed" "${limit[@]}" "${common[@]}" "$@"
}
ner() { # ner NAME MODEL SEED [extra…]: a CoNLL-2003 token-classifier row
  local name="$1" m="$2" seed="$3"; shift 3
  row "$name" train token-classifier --model "$m" --task conll2003 --train "$ner_train" --eval "$ner_test" --output "$out/models/$name" \
    --epochs "$ner_epochs" --batch-size "$batch" --learning-rate "$lr" --warmup-ratio 0.1 --max-length 128 --seed "$seed" "${limit[@]}" "${common[@]}" "$@"
}
feat() { # feat NAME MODEL TASK TRAIN TEST POOLING SEED [extra…]: frozen features + logistic regression
  local name="$1" m="$2" task="$3" train="$4" test="$5" pooling="$6" seed="$7"; shift 7
  row "$name" features --model "$m" --task "$task" --train "$train" --test "$test" --pooling "$pooling" --max-length 128 --seed "$seed" \
    "${feature_limit[@]}" --json --threads "$threads" "$@"
}

# pretrain_row NAME MODEL LOG: the last held-out evaluation of a pretraining run as a result line (perplexity = exp(eval_loss)),
# from the run's metrics.jsonl, else from the model card (README.md) that `sharpformer export` wrote from that file.
pretrain_row() {
  local name="$1" m="$2" log="$3"
  order+=("$name")
  [ -s "$out/rows/$name.json" ] && return 0
  if [ ! -f "$log" ] && ! grep -q '^| evaluation loss (step' "$m/README.md" 2>/dev/null; then
    echo "skip $name: no pretraining log $log and no evaluation rows in $m/README.md" >&2; order=("${order[@]:0:${#order[@]}-1}"); return 0
  fi
  /usr/bin/python3 - "$m" "$log" > "$out/rows/$name.json.$$.tmp" <<'PY'
import json, math, os, re, sys
model, log = sys.argv[1], sys.argv[2]
config = json.load(open(model + "/config.json"))
if os.path.isfile(log):
    evals = [r for r in map(json.loads, filter(str.strip, open(log))) if r.get("kind") == "eval" and "eval_loss" in r]
    if not evals: sys.exit(f"{log}: no evaluation record")
    e = evals[-1]
    step, epoch, loss, accuracy, source = e["step"], e["epoch"], e["eval_loss"], e["eval_accuracy"], log
else:
    card = open(model + "/README.md").read()
    def value(metric):
        found = re.findall(r"^\| evaluation " + metric + r" \(step (\d+)\) \| ([0-9.]+) \|", card, re.M)
        if not found: sys.exit(f"{model}/README.md: no 'evaluation {metric} (step N)' row")
        return int(found[-1][0]), float(found[-1][1])
    step, loss = value("loss")
    _, accuracy = value("accuracy")
    epoch, source = None, model + "/README.md"
gpt = config["model_type"] == "gpt2"
print(json.dumps({"task": "pretraining", "split": "held-out", "method": "clm" if gpt else "mlm", "model": model,
    "model_type": config["model_type"], "init": "pretrained", "seed": 0,
    "metrics": {"accuracy": accuracy, "loss": loss, "perplexity": math.exp(loss)},
    "budget": {"steps": step, **({"epochs": epoch} if epoch is not None else {}), "source": os.path.basename(source)},
    "seconds": 0, "cpu_seconds": 0}, separators=(",", ":")))
PY
  mv "$out/rows/$name.json.$$.tmp" "$out/rows/$name.json"
}

pretrain_row bert-pretraining "$model" "${BERT_LOG:-$model/metrics.jsonl}"
[ -z "$gpt" ] || pretrain_row gpt-pretraining "$gpt" "${GPT_LOG:-$gpt/metrics.jsonl}"
row ag-tfidf baseline --dataset agnews --data "$data" --json
row emotion-tfidf baseline --dataset emotion --data "$data" --json
row conll-lexical baseline --dataset conll2003 --data "$data" --json
for s in $seeds; do
  for init in pretrained random; do
    flag=(); [ "$init" = random ] && flag=(--random-init)
    ft "ag-ft-$init-s$s" "$model" ag_news "$ag_train" "$ag_test" "$ag_epochs" 128 "$s" "${flag[@]}"
    feat "ag-feat-$init-s$s" "$model" ag_news "$ag_train" "$ag_test" mean "$s" "${flag[@]}"
    ft "emotion-ft-$init-s$s" "$model" emotion "$emo_train" "$emo_test" "$emo_epochs" 64 "$s" "${flag[@]}"
    feat "emotion-feat-$init-s$s" "$model" emotion "$emo_train" "$emo_test" mean "$s" "${flag[@]}"
    ner "conll-ft-$init-s$s" "$model" "$s" "${flag[@]}"
  done
done

if [ "${SKIP_ADAPT:-0}" != 1 ]; then
  # Domain adaptation (ULMFiT's second step): continue masked-LM pretraining on the tasks' own train text, then the same rows.
  adapted="${ADAPTED:-$out/adapted}"
  if [ -z "${ADAPTED:-}" ] && [ ! -f "$out/adapt.done" ]; then
    if want adapt; then
      echo "run  adapt: pretrain --init $model --task ag_news conll emotion, $adapt_steps steps" >&2
      rm -rf "$adapted"
      sf pretrain --init "$model" --task ag_news conll emotion --data "$data" --max-steps "$adapt_steps" --batch-size 32 --block-size 128 \
        --learning-rate 1e-4 --warmup-ratio 0.06 --eval-steps "$adapt_steps" --seed 0 --output "$adapted" --json --threads "$threads" \
        > "$out/logs/adapt.out" 2> "$out/logs/adapt.err"
      touch "$out/adapt.done"
    else
      need=0
      for s in $seeds; do for n in ag-ft-adapted emotion-ft-adapted conll-ft-adapted; do
        if want "$n-s$s" && [ ! -s "$out/rows/$n-s$s.json" ]; then need=1; fi
      done; done
      if [ "$need" = 1 ]; then
        # Another stream (ONLY) owns the adaptation: wait for it rather than fine-tune a half-written directory.
        echo "wait adapt: another stream is writing $adapted" >&2
        while [ ! -f "$out/adapt.done" ]; do sleep 30; done
      fi
    fi
  fi
  for s in $seeds; do
    ft "ag-ft-adapted-s$s" "$adapted" ag_news "$ag_train" "$ag_test" "$ag_epochs" 128 "$s"
    ft "emotion-ft-adapted-s$s" "$adapted" emotion "$emo_train" "$emo_test" "$emo_epochs" 64 "$s"
    ner "conll-ft-adapted-s$s" "$adapted" "$s"
  done
fi

if [ -n "$gpt" ]; then
  # GPT vs BERT on AG News: the same rows from the GPT-2 (features read the last non-pad token).
  for s in $seeds; do
    for init in pretrained random; do
      flag=(); [ "$init" = random ] && flag=(--random-init)
      ft "ag-gpt-ft-$init-s$s" "$gpt" ag_news "$ag_train" "$ag_test" "$ag_epochs" 128 "$s" "${flag[@]}"
      feat "ag-gpt-feat-$init-s$s" "$gpt" ag_news "$ag_train" "$ag_test" last "$s" "${flag[@]}"
    done
  done
  # Sample generations (greedy and seeded sampling) for the README; "generations" for ONLY.
  if want generations && [ ! -s "$out/generations.jsonl" ]; then
    for p in "The president said" "In the third quarter, the company" "Scientists have discovered"; do
      sf generate --model "$gpt" --max-new-tokens 30 --json "$p" | tail -n 1
      sf generate --model "$gpt" --max-new-tokens 30 --do-sample --top-p 0.9 --temperature 0.8 --seed 0 --json "$p" | tail -n 1
    done > "$out/generations.jsonl.tmp"
    mv "$out/generations.jsonl.tmp" "$out/generations.jsonl"
  fi
fi

: > "$out/results.jsonl.$$.tmp"   # per process: two ONLY streams may finish together
for name in "${order[@]}"; do
  if [ -s "$out/rows/$name.json" ]; then cat "$out/rows/$name.json" >> "$out/results.jsonl.$$.tmp"; else echo "note: row $name not finished yet" >&2; fi
done
mv "$out/results.jsonl.$$.tmp" "$out/results.jsonl"
sf results-table "$out/results.jsonl" > "$out/table.md.$$.tmp"
mv "$out/table.md.$$.tmp" "$out/table.md"
cat "$out/table.md"
