#!/usr/bin/env bash
# RoG on real KG QA data (not shipped: ../shared/data/kg), the commands behind docs/results.md.
#   bash runs/rog_real.sh pathquestion     # PathQuestion 2-hop
#   bash runs/rog_real.sh metaqa           # MetaQA-approx 1-hop + 2-hop (one adapter)
#   bash runs/rog_real.sh metaqa-rank      # the same, rank-embed planner (issue 21)
#   bash runs/rog_real.sh metaqa-3hop      # templated 3-hop questions over MetaQA-approx's KB
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
metaqa-3hop)
  # issue 21: MetaQA-approx ships no 3-hop questions; these follow MetaQA's 3-hop types
  # (movie -> person -> their other movies -> an attribute), two wordings each
  O=$OUT/metaqa-3hop
  mkdir -p "$O"
  $RT kg load "$DATA/metaqa_approx/kb.txt" --out "$O/kg"
  cat > "$O/templates.yaml" <<'YAML'
- path: [directed_by, ~directed_by, starred_actors]
  texts: ["who acted in the films directed by the director of {}",
          "the movies that share directors with {} starred who"]
- path: [directed_by, ~directed_by, written_by]
  texts: ["who wrote the films directed by the director of {}",
          "the movies that share directors with {} were written by who"]
- path: [directed_by, ~directed_by, release_year]
  texts: ["when were the films directed by the director of {} released",
          "the movies that share directors with {} came out in which years"]
- path: [directed_by, ~directed_by, has_genre]
  texts: ["what genres are the films directed by the director of {}",
          "the movies that share directors with {} are of which types"]
- path: [written_by, ~written_by, directed_by]
  texts: ["who directed the films written by the writer of {}",
          "the movies that share screenwriters with {} were directed by who"]
- path: [written_by, ~written_by, starred_actors]
  texts: ["who acted in the films written by the writer of {}",
          "the movies that share screenwriters with {} starred who"]
- path: [written_by, ~written_by, release_year]
  texts: ["when were the films written by the writer of {} released",
          "the movies that share screenwriters with {} came out in which years"]
- path: [written_by, ~written_by, in_language]
  texts: ["what languages are the films written by the writer of {} in",
          "the movies that share screenwriters with {} are in which languages"]
- path: [starred_actors, ~starred_actors, directed_by]
  texts: ["who directed the films starring the actors of {}",
          "the movies that share actors with {} were directed by who"]
- path: [starred_actors, ~starred_actors, written_by]
  texts: ["who wrote the films starring the actors of {}",
          "the movies that share actors with {} were written by who"]
- path: [starred_actors, ~starred_actors, release_year]
  texts: ["when were the films starring the actors of {} released",
          "the movies that share actors with {} came out in which years"]
- path: [starred_actors, ~starred_actors, has_genre]
  texts: ["what genres are the films starring the actors of {}",
          "the movies that share actors with {} are of which types"]
YAML
  $RT rog synth "$O/kg" --templates "$O/templates.yaml" --out "$O/questions.jsonl" \
      --per-template "${PER_TEMPLATE:-150}" --seed 0
  $RT rog build-data "$O/kg" "$O/questions.jsonl" --format jsonl --out "$O/data" --test 0.2 \
      --seed 0 --max-hops 3 --train-limit "$TRAIN_Q"
  # targets: the templates' own paths (auto); negatives: every other valid path of <= 3 hops
  $RT rog train-planner --kg "$O/kg" --data "$O/data" --out "$O/planner" --hops 3 \
      --targets auto --threads 2
  $RT rog predict --kg "$O/kg" --data "$O/data" --out "$O/eval-paths" --limit "$EVAL_Q" \
      --threads 2 --modes paths --hops 3 --exclude-entities
  $RT rog predict --kg "$O/kg" --data "$O/data" --out "$O/eval-rank" --limit "$EVAL_Q" \
      --threads 2 --modes grounded --planner-kind rank-embed --ranker "$O/planner" --hops 3 \
      --top-plans 1 --exclude-entities $PREDICT_FLAGS
  # the planner on wordings it never saw: a third wording per chain, 10 questions each, all test
  cat > "$O/templates-unseen.yaml" <<'YAML'
- path: [directed_by, ~directed_by, starred_actors]
  texts: ["name the actors of the other works by the person who directed {}"]
- path: [directed_by, ~directed_by, written_by]
  texts: ["name the screenwriters of the other works by the person who directed {}"]
- path: [directed_by, ~directed_by, release_year]
  texts: ["in what years did the filmmaker behind {} put out films"]
- path: [directed_by, ~directed_by, has_genre]
  texts: ["which genres does the filmmaker behind {} work in"]
- path: [written_by, ~written_by, directed_by]
  texts: ["name the directors of the other scripts by the person who wrote {}"]
- path: [written_by, ~written_by, starred_actors]
  texts: ["name the cast of the other scripts by the person who wrote {}"]
- path: [written_by, ~written_by, release_year]
  texts: ["in what years were scripts by the author of {} filmed"]
- path: [written_by, ~written_by, in_language]
  texts: ["in which languages are scripts by the author of {} filmed"]
- path: [starred_actors, ~starred_actors, directed_by]
  texts: ["name the directors who worked with the cast of {}"]
- path: [starred_actors, ~starred_actors, written_by]
  texts: ["name the screenwriters who worked with the cast of {}"]
- path: [starred_actors, ~starred_actors, release_year]
  texts: ["in what years did the cast of {} appear in films"]
- path: [starred_actors, ~starred_actors, has_genre]
  texts: ["which genres has the cast of {} appeared in"]
YAML
  $RT rog synth "$O/kg" --templates "$O/templates-unseen.yaml" \
      --out "$O/questions-unseen.jsonl" --per-template 10 --seed 1
  $RT rog build-data "$O/kg" "$O/questions-unseen.jsonl" --format jsonl --out "$O/data-unseen" \
      --test 1.0 --seed 0 --max-hops 3
  PY=${PY:-.venv/bin/python}
  for r in "--ranker $O/planner" ""; do   # tuned, then the untuned bundled MiniLM
    $PY -m ragtune.rog.diagnose bounds --kg "$O/kg" --data "$O/data" --hops 3 --limit "$EVAL_Q" $r
    $PY -m ragtune.rog.diagnose bounds --kg "$O/kg" --data "$O/data-unseen" --hops 3 --limit 0 $r
  done
  ;;
esac
