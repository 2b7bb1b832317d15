# Two commands on a fresh machine:
#   make demo   installs the CPU environment, then runs the tiny end-to-end demo and its HTML report
#   make test   installs the CPU environment, then runs the test suite (what .ci/run calls)
# Also: make demo-vllm (the demo through vLLM), make plan (the full-scale cost plan), make lint (ruff and
# snakemake --lint), make test-fast (the unit tier: no demo, models, training, vLLM or Slurm; the edit-run
# loop), make status (where the demo's run stands; a run of yours: make status CONFIG="config.yaml my.yaml").
VENV ?= .venv
PYTHON ?= python3
# Extra pip arguments for torch, e.g. the PyTorch CPU wheel index on a machine without a local wheel.
TORCH_PIP_ARGS ?=
BIN := $(VENV)/bin
# The config files make status reads, later ones over earlier ones: the demo's by default.
CONFIG ?= config.yaml presets/tiny.yaml
# pytest-xdist workers for make test: the tests that wait (on Slurm, on the demo) leave a core to the others.
TEST_WORKERS ?= 2
# When this make started: make test ends by printing its total time (CONTRIBUTING.md: the budget).
STARTED := $(shell date +%s)
# DeepSpeed compiles its CPU communication op once (about a minute) into this folder.
RUN := env PATH="$(abspath $(BIN)):$$PATH" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 \
	TORCH_EXTENSIONS_DIR="$(abspath .cache/torch_extensions)"

.PHONY: install demo demo-vllm test test-fast lint plan status
install: $(VENV)/.installed

$(VENV)/.installed: envs/cpu-requirements.txt envs/cpu-constraints.txt envs/slurm-plugin-requirements.txt pyproject.toml
	@echo "Installing the CPU environment into $(VENV) (a few minutes; log: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@( $(BIN)/pip install torch==2.13.0 $(TORCH_PIP_ARGS) \
	  && DS_BUILD_OPS=0 $(BIN)/pip install -r envs/cpu-requirements.txt -c envs/cpu-constraints.txt \
	  && $(BIN)/pip install --no-deps -r envs/slurm-plugin-requirements.txt \
	  && $(BIN)/pip uninstall -y torchvision torchaudio torchcodec \
	  && $(BIN)/pip install --no-deps -e . ) > $(VENV)/install.log 2>&1 \
	  || { tail -40 $(VENV)/install.log; exit 1; }
	@touch $@

demo: install
	$(RUN) $(BIN)/snakemake --profile profiles/local
	$(RUN) $(BIN)/snakemake --profile profiles/local --report results/tiny/report.html
	@echo "Report:  results/tiny/report.html"

demo-vllm: install
	$(RUN) $(BIN)/snakemake --profile profiles/local --configfile presets/tiny-vllm.yaml

plan: install
	$(RUN) $(BIN)/snakemake plan --cores 1 --forcerun plan

status: install
	$(BIN)/python -m scalequest.status --configfile $(CONFIG)

lint: install
	$(RUN) $(BIN)/ruff check .
	$(RUN) $(BIN)/snakemake --lint

test: lint
	@$(RUN) $(BIN)/python -m pytest -ra --durations=20 -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder tests; status=$$?; \
	echo "make test: $$(( $$(date +%s) - $(STARTED) )) s in all, install and lint included (budget: 1800 s on 2 cores)"; \
	exit $$status

test-fast: install
	$(RUN) $(BIN)/python -m pytest -ra --durations=10 -m unit tests
