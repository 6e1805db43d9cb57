# Developer entry points. Everything runs from a virtualenv that is created on first use,
# so a fresh clone needs nothing but python3.

PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp

.PHONY: all run demo test lint clean

all: test

# The stamp tracks pyproject.toml: editing dependencies reinstalls, otherwise nothing happens.
# The test extra is always installed so that `make run` and `make test` share one environment.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/python -m dhtviewer

demo: $(STAMP)
	$(BIN)/python -m dhtviewer --testnet 64

test: $(STAMP)
	$(BIN)/ruff check dhtviewer tests
	$(BIN)/mypy dhtviewer
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check dhtviewer tests
	$(BIN)/mypy dhtviewer

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
