#!/usr/bin/env bash
# Retrieval that learns the domain, on real data (not shipped: ../shared/data/raft): tune the
# bundled all-MiniLM-L6-v2 and a cross-encoder initialised from it on the train split of a RAFT
# build, then score oracle recall@k and MRR on its test split for BM25, the bundled embedder,
# hybrid, the tuned embedder (dense and hybrid) and the cross-encoder and LM rerankers on top.
# docs/results.md ("Retrieval that learns") is this script's output.
#   bash runs/retrieval_learned.sh gorilla    # HuggingFace APIBench, split by api_name
#   bash runs/retrieval_learned.sh hotpotqa   # dev_300: 177 train + 11 valid questions, 112 test
# Knobs (environment variables): DATA, OUT, RT, EPOCHS (embedder), RERANK_EPOCHS, CANDIDATES.
# Every step resumes or is skipped when its output exists.
set -euo pipefail
DATA=${DATA:-../shared/data/raft}
RT=${RT:-.venv/bin/ragtune}
EPOCHS=${EPOCHS:-3}
RERANK_EPOCHS=${RERANK_EPOCHS:-1}
CANDIDATES=${CANDIDATES:-20}
set_=${1:?name a data set: gorilla or hotpotqa}
O=${OUT:-runs/out}/retrieval/$set_
case $set_ in
gorilla)
    # the records rendered as the RAFT Gorilla run renders them (docs/results.md)
    [ -f "$O/raft/manifest.json" ] || $RT raft from-qa gorilla \
        "$DATA/gorilla_huggingface/huggingface_eval.json" --out "$O/raft" \
        --api-fields domain,api_name,api_call,description --field-chars 100 \
        --distractors 4 --distractor-mode mixed --p 0.8 --seed 0
    ;;
hotpotqa)
    # 300 questions: about a third test, a fifteenth valid, the rest train (177 / 11 / 112 here)
    [ -f "$O/raft/manifest.json" ] || $RT raft from-qa hotpotqa \
        "$DATA/hotpotqa/dev_300.jsonl" --out "$O/raft" --test-fraction 0.3334 \
        --valid-fraction 0.0667 --distractors 4 --p 0.8 --seed 0
    ;;
*) echo "unknown data set $set_: gorilla or hotpotqa" >&2; exit 2 ;;
esac
[ -f "$O/retriever/modules.json" ] || $RT retriever train --data "$O/raft" \
    --out "$O/retriever" --epochs "$EPOCHS" --negatives 1 --threads 2
[ -f "$O/reranker/config.json" ] || $RT reranker train --data "$O/raft" --out "$O/reranker" \
    --miner "$O/retriever" --epochs "$RERANK_EPOCHS" --threads 2
# rerankers on the tuned hybrid's top CANDIDATES: the cross-encoder, and the bundled generator
# scoring each candidate by log-probability (RankRAG's one model that ranks and answers)
$RT retriever eval --data "$O/raft" --embedder "$O/retriever" --rerank "cross:$O/reranker" --rerank lm \
    --candidates "$CANDIDATES" --ks 1,2,5,10 --out "$O/eval" --threads 2
