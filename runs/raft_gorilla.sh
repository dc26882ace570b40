#!/usr/bin/env bash
# RAFT on real data: Gorilla APIBench, HuggingFace domain (not shipped: ../shared/data/raft), on
# CPU with the bundled SmolLM2-135M. Builds RAFT data (ragtune raft from-qa gorilla), trains a DSF
# adapter (or reuses one, DSF=...) and a RAFT adapter, then runs ragtune eval. Every step resumes
# if re-run.
#   bash runs/raft_gorilla.sh        # the defaults below: ~1 h on 2 cores
# docs/results.md ("RAFT on Gorilla") uses it for the first two steps of its recipe, then
# continues training the RAFT adapter with plain ragtune commands listed there:
#   OUT=runs/out/v2 K=4 DMODE=mixed RAFT_EPOCHS=1 DSF_EPOCHS=2 DSF_FLAGS="--batch-tokens 512" \
#       bash runs/raft_gorilla.sh    # the DSF adapter
#   OUT=runs/out/v3 K=4 DMODE=mixed RAFT_EPOCHS=1 API_COT=task DSF=runs/out/v2/gorilla/dsf \
#       bash runs/raft_gorilla.sh    # task-first CoT, first RAFT epoch
# Knobs (environment variables, defaults below): DATA, OUT, RT, K, DMODE, RAFT_EPOCHS,
# DSF_EPOCHS, DSF_FLAGS, API_COT, DOC_ORDER, RERANK, DSF, SWEEP_Q. Records are always rendered
# compactly (domain, api_name, api_call, description cut to 100 characters). The eval here
# generates at most 128 tokens, which cuts many task-first CoT answers (API_COT=task): rerun
# ragtune eval with --max-tokens 256 to score them, as docs/results.md does.
set -euo pipefail
DATA=${DATA:-../shared/data/raft/gorilla_huggingface}
O=${OUT:-runs/out}/gorilla
RT=${RT:-.venv/bin/ragtune}
RAFT_EPOCHS=${RAFT_EPOCHS:-0.6}   # RAFT training epochs (fractions allowed)
SWEEP_Q=${SWEEP_Q:-40}       # test questions per point of the distractor sweep
K=${K:-3}                    # training distractors per example
DMODE=${DMODE:-random}       # random | hard | mixed (see ragtune raft from-qa --help)
DSF_EPOCHS=${DSF_EPOCHS:-1}  # DSF (question -> call) training epochs
DSF_FLAGS=${DSF_FLAGS:-}     # e.g. "--batch-tokens 1024" for more, smaller steps
API_COT=${API_COT:-call}     # call | task (see ragtune raft from-qa --help)
DOC_ORDER=${DOC_ORDER:-shuffle}  # shuffle | dense (training prompts best-match first)
RERANK=${RERANK:-$([ "$DOC_ORDER" = dense ] && echo dense || echo none)}  # eval --rerank
DSF=${DSF:-}                 # an existing DSF run directory to reuse (its data is question -> call
                             # and does not depend on K, DMODE or API_COT); empty: train one
$RT raft from-qa gorilla "$DATA/huggingface_eval.json" --out "$O/raft" \
    --api-fields domain,api_name,api_call,description --field-chars 100 \
    --distractors "$K" --distractor-mode "$DMODE" --p 0.8 --seed 0 --api-cot "$API_COT" \
    --doc-order "$DOC_ORDER"
if [ -z "$DSF" ]; then
    DSF=$O/dsf
    # shellcheck disable=SC2086
    $RT train --data "$O/raft" --view dsf --out "$DSF" --epochs "$DSF_EPOCHS" --lr 3e-4 --bf16 \
        --threads 2 $DSF_FLAGS
fi
$RT train --data "$O/raft" --view chat --out "$O/raft-lora" --epochs "$RAFT_EPOCHS" --lr 3e-4 \
    --bf16 --threads 2
$RT eval --data "$O/raft" --out "$O/eval" --dsf-adapter "$DSF/adapter" \
    --raft-adapter "$O/raft-lora/adapter" --k 5 --sweep 0,1,2,4,8 --sweep-limit "$SWEEP_Q" \
    --max-tokens 128 --batch-size 8 --threads 2 --rerank "$RERANK"
