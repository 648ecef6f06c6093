# loadlens: `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY_SRC := src tests bench sample_data scripts

.PHONY: install demo test lint bench bench-ingest bench-runner bench-scrape bench-peer bench-peers bench-brief sample-data clean \
	engine demo-real test-engine bench-whatif-real bench-whatif-rag

install: $(STAMP)

$(STAMP): pyproject.toml
	@bash scripts/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,fast]'
	@touch $(STAMP)

demo: $(STAMP)  ## ingest sample_data/ and write reports/demo-brief.{pdf,html,md}
	$(BIN)/loadlens demo --data sample_data --out reports

test: lint  ## ruff, then the whole pytest suite (the real-engine tests: make test-engine)
	$(BIN)/python -m pytest -q -m "not engine"

engine:  ## build llama.cpp's llama-server + fetch SmolLM2-135M, once per machine (~10 min)
	$(PYTHON) scripts/engine.py

test-engine: $(STAMP)  ## the runner and the models against the real engine (skips if unbuildable)
	@$(PYTHON) scripts/engine.py || echo "engine: could not be built here; the engine tests skip, saying why"
	$(BIN)/python -m pytest -q -m engine

demo-real: $(STAMP) engine  ## a sweep against the real engine on this CPU, and its brief
	$(BIN)/python scripts/demo_real.py --out reports

bench-whatif-real: $(STAMP) engine  ## what-if predictions against runs on the real engine
	$(BIN)/python bench/whatif_real.py

bench-whatif-rag: $(STAMP)  ## RAG what-if: predicted vs measured (simulator; + the real engine if built)
	$(BIN)/python bench/whatif_rag.py $(if $(wildcard $(HOME)/.cache/loadlens/engine/*/engine.json),--real,)

lint: $(STAMP)  ## ruff (lint + format) on everything, mypy on src/
	$(BIN)/ruff check $(PY_SRC)
	$(BIN)/ruff format --check $(PY_SRC)
	$(BIN)/python -m mypy src/loadlens

bench: bench-ingest bench-runner  ## both benchmarks below

bench-ingest: $(STAMP)  ## ingest + report a generated 1,000,000-request trace; prints ratios
	$(BIN)/python bench/run.py

bench-runner: $(STAMP)  ## the sweep runner against serve-sim, up to 1,000 streams
	$(BIN)/python bench/runner.py

bench-brief: $(STAMP)  ## one capacity brief (PDF) over 50 deployments, against the JSON brief
	$(BIN)/python bench/brief_scale.py

bench-scrape: $(STAMP)  ## p95 TTFT at c32 with and without scraping a 4 MB /metrics every second
	$(BIN)/python bench/scrape_cost.py

PEER := bench/.peer
PEER_ARGS ?=
bench-peers:  ## install the peer clients (GuideLLM, vLLM's client, AIPerf) in bench/.peer*
	-@PYTHON=$(PYTHON) bash bench/peers/install.sh

bench-peer: $(STAMP) bench-peers  ## bench-runner with every installed peer client beside it
	$(BIN)/python bench/runner.py --peers $(PEER_ARGS)

sample-data: $(STAMP)  ## regenerate sample_data/ (deterministic)
	$(BIN)/python sample_data/generate.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis bench/out $(PEER) $(PEER)-vllm $(PEER)-aiperf
	find reports -mindepth 1 ! -name .gitkeep -delete
