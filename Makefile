# The two commands of the README:
#   make run    set up .venv (first time) and run the main job
#   make test   set up .venv (first time), lint, run the test suite
# PYTHON picks the interpreter the virtual environment is made from.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint clean

$(BIN)/corerl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch would pull a newer CUDA build (several GB).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/corerl

setup: $(BIN)/corerl

run: setup
	$(BIN)/corerl reproduce

lint: setup
	$(BIN)/ruff check corerl tests benchmarks
	$(BIN)/ruff format --check corerl tests benchmarks

# pytest exits 5 when it collects no test: make treats that as a failure, as it should.
test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
