# Quick start: `make reproduce` (main job on the built-in task) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
PRESET ?= quick
OUT ?= runs/rt-$(PRESET)
GLUE_DIR ?= ../shared/glue

.PHONY: setup reproduce test bench clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

reproduce: setup
	$(BIN)/python -m workbench reproduce --task rt --preset $(PRESET) --out $(OUT)

test: setup
	$(BIN)/python -m pytest -q workbench tests

bench: setup
	$(BIN)/python benchmarks/train_throughput.py --glue-dir $(GLUE_DIR)

clean:
	rm -rf runs .pytest_cache
