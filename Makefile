# `make test` and `make demo` each set up .venv themselves on a fresh machine, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.roboreward-installed

.PHONY: test demo lint format install bench clean

# Reinstall only when the package metadata changes; the editable install picks up code changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON) -m venv"; $(PYTHON) -m venv $(VENV); }
	@echo "installing the toolkit into $(VENV): pip install -e \".[dev]\" (torch, transformers, trl, datasets,"
	@echo "gradio, ...: a few minutes and a few GiB on a fresh machine, once; pip lists each package below)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e ".[dev]"
	@echo "installed: $(VENV) is ready (make reinstalls only when pyproject.toml changes)"
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# pytest exits 5 when it collected no test; make treats that, like any non-zero exit, as a failure.
test: lint
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/roboreward demo

bench: $(STAMP)
	$(BIN)/python benchmarks/video_sampling.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis src/*.egg-info
