# Quick start: `make reproduce` (main job on the built-in task; TASK=vitaminc PRESET=paper for the paper's
# conditions) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= cpu
# TORCH=cu126 (or another CUDA tag of download.pytorch.org/whl) swaps in the GPU build of the same torch version
TORCH_VERSION := $(shell sed -n 's/^torch==//p' requirements.txt)
STAMP := $(VENV)/.installed-requirements-$(TORCH)
PRESET ?= quick
TASK ?= rt
OUT ?= runs/$(TASK)-$(PRESET)
GLUE_DIR ?= ../shared/glue

.PHONY: setup reproduce test bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(if $(filter-out cpu,$(TORCH)),$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)+$(TORCH)" \
	  --index-url https://download.pytorch.org/whl/$(TORCH) --extra-index-url https://pypi.org/simple)
	touch $(STAMP)

setup: $(STAMP)

reproduce: setup
	$(BIN)/python -m workbench reproduce --task $(TASK) --preset $(PRESET) --out $(OUT) \
	  $(if $(filter-out rt vitaminc,$(TASK)),--glue-dir $(GLUE_DIR))
	mkdir -p $(OUT)/notebooks
	cd notebooks && for nb in *.ipynb; do \
	  WORKBENCH_PRESET=$(PRESET) WORKBENCH_TASK=$(TASK) $(if $(filter-out rt vitaminc,$(TASK)),WORKBENCH_GLUE_DIR=$(abspath $(GLUE_DIR))) \
	  ../$(BIN)/jupyter nbconvert --to notebook --execute "$$nb" \
	    --ExecutePreprocessor.timeout=1800 --output-dir ../$(OUT)/notebooks || exit 1; done

test: setup
	$(BIN)/python -m pytest -q workbench tests
	WORKBENCH_PRESET=smoke $(BIN)/python -m pytest -q --nbmake notebooks

bench: setup
	$(BIN)/python benchmarks/train_throughput.py --glue-dir $(GLUE_DIR)
	$(BIN)/python benchmarks/inference_speedup.py --run $(OUT)

clean:
	rm -rf runs .pytest_cache
