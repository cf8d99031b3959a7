# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make run    the whole local stack (PostgreSQL, AWS stand-ins, API on :3000, workers)
#   make test   every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint synth bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,infra]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ledgerline dev up

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy layers/common/python/ledgerline
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/python/ledgerline

synth: $(STAMP)
	$(BIN)/python -m infra.synth

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) cdk.out .pytest_cache
