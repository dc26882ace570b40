#!/usr/bin/env bash
# RoG on real KG QA data (not shipped: ../shared/data/kg), the commands behind docs/results.md.
#   bash runs/rog_real.sh pathquestion     # PathQuestion 2-hop
#   bash runs/rog_real.sh metaqa           # MetaQA-approx 1-hop + 2-hop (one adapter)
#   bash runs/rog_real.sh metaqa-rank      # the same, rank-embed planner (issue 21)
set -euo pipefail
DATA=${DATA:-../shared/data/kg}
OUT=${OUT:-runs/out}
RT=${RT:-.venv/bin/ragtune}
TRAIN_Q=${TRAIN_Q:-600}     # training questions used (CPU budget)
EVAL_Q=${EVAL_Q:-200}       # test questions answered per configuration
TRAIN_FLAGS=${TRAIN_FLAGS:-}  # extra `rog train` flags, e.g. --bf16
PREDICT_FLAGS=${PREDICT_FLAGS:-}  # extra `rog predict` flags, e.g. --modes constrained,grounded
case "${1:-pathquestion}" in
pathquestion)
  O=$OUT/pq
  $RT kg load "$DATA/pathquestion/2H-kb.txt" --out "$O/kg"
  $RT rog build-data "$O/kg" "$DATA/pathquestion/PQ-2H.txt" --format pathquestion \
      --out "$O/data" --test 0.2 --seed 0 --train-limit "$TRAIN_Q"
  $RT rog train --data "$O/data" --out "$O/lora" --epochs 1 --batch-tokens 2048 --lr 5e-4 --threads 2 $TRAIN_FLAGS
  $RT rog predict --kg "$O/kg" --data "$O/data" --adapter "$O/lora/adapter" --out "$O/eval" \
      --limit "$EVAL_Q" --threads 2 $PREDICT_FLAGS
  ;;
metaqa)
  O=$OUT/metaqa
  $RT kg load "$DATA/metaqa_approx/kb.txt" --out "$O/kg"
  for h in 1 2; do
    $RT rog build-data "$O/kg" "$DATA/metaqa_approx/$h-hop/dev.txt" --format metaqa \
        --out "$O/data-$h" --test 0.2 --seed 0 --train-limit "$((TRAIN_Q / 2))"
  done
  # one adapter for both: the two training sets concatenated
  mkdir -p "$O/data-mix/chat"
  cat "$O/data-1/chat/train.jsonl" "$O/data-2/chat/train.jsonl" | shuf --random-source=<(yes) \
      > "$O/data-mix/chat/train.jsonl"
  $RT rog train --data "$O/data-mix" --out "$O/lora" --epochs 1 --batch-tokens 2048 --lr 5e-4 --threads 2 $TRAIN_FLAGS
  for h in 1 2; do
    $RT rog predict --kg "$O/kg" --data "$O/data-$h" --adapter "$O/lora/adapter" \
        --out "$O/eval-$h" --limit "$EVAL_Q" --threads 2 $PREDICT_FLAGS
  done
  ;;
metaqa-rank)
  # issue 21: the rank-embed planner (a bi-encoder over relation paths; no generator training),
  # the base model as the grounded reasoner, against all paths with the same reasoner
  O=$OUT/metaqa-rank
  $RT kg load "$DATA/metaqa_approx/kb.txt" --out "$O/kg"
  for h in 1 2; do
    $RT rog build-data "$O/kg" "$DATA/metaqa_approx/$h-hop/dev.txt" --format metaqa \
        --out "$O/data-$h" --test 0.2 --seed 0 --train-limit "$((TRAIN_Q / 2))"
  done
  $RT rog train-planner --kg "$O/kg" --data "$O/data-1" --data "$O/data-2" --out "$O/planner" \
      --threads 2
  for h in 1 2; do
    $RT rog predict --kg "$O/kg" --data "$O/data-$h" --out "$O/eval-paths-$h" \
        --limit "$EVAL_Q" --threads 2 --modes paths
    $RT rog predict --kg "$O/kg" --data "$O/data-$h" --out "$O/eval-rank-$h" --limit "$EVAL_Q" \
        --threads 2 --modes grounded --planner-kind rank-embed --ranker "$O/planner" \
        --top-plans 1 --exclude-entities $PREDICT_FLAGS   # MetaQA never answers with the topic
  done
  ;;
esac
