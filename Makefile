# Developer entry points. Everything runs from a virtualenv that is created on first use,
# so a fresh clone needs nothing but python3.

PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp

.PHONY: all run demo test lint clean docs

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

# The app on a simulated Mainline of 1,000,000 nodes (a child process; `dhtviewer simnet`).
demo: $(STAMP)
	$(BIN)/python -m dhtviewer --simnet 1000000

test: $(STAMP)
	$(BIN)/ruff check dhtviewer tests benchmarks examples docs
	$(BIN)/mypy dhtviewer examples docs/build.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check dhtviewer tests benchmarks examples docs
	$(BIN)/mypy dhtviewer examples docs/build.py

# The library's API reference (pdoc; the guide is docs/guide.md): build/docs/index.html.
docs: $(STAMP)
	$(BIN)/python docs/build.py build/docs

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Coverage-guided fuzzing of the receive path (atheris is installed here, not by `make test`).
# Crashes land in fuzz/crashes/ and are replayed by tests/hostile on every test run.
FUZZ_SECONDS ?= 600
.PHONY: fuzz flood
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet atheris
	$(BIN)/python fuzz/seed_corpus.py
	$(BIN)/python fuzz/fuzz_receive.py fuzz/corpus -dict=fuzz/krpc.dict \
		-artifact_prefix=fuzz/crashes/ -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

# Loopback flood tests at full scale (make test runs them small): 20,000 queries/s for 5 s,
# 200 announcing addresses, persistence kills.
flood: $(STAMP)
	FLOOD_SCALE=full QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest tests/hostile -q -s

# Benchmark suite (python -m benchmarks): one table per benchmark on stdout, JSON results and a
# Markdown copy of the tables in bench-results/. Not part of `make test`, which runs every
# benchmark once at its tiny size. BENCH_SIZE=medium for a quicker pass, BENCH=name to pick.
BENCH_SIZE ?= full
BENCH ?=
.PHONY: bench
bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks --size $(BENCH_SIZE) \
		--markdown bench-results/performance.md $(BENCH)

# Packaged application (see packaging/README.md): a PyInstaller one-folder bundle, then
# dist/dhtviewer-<version>-linux-x86_64.tar.gz and dist/dhtviewer_<version>_amd64.deb.
.PHONY: package icons
package: $(STAMP)
	$(BIN)/python packaging/build.py

# Re-render resources/icons/ (PNG sizes, .ico, .icns) after editing resources/dhtviewer*.svg.
icons: $(STAMP)
	$(BIN)/python packaging/render_icons.py

# PNGs of every view of the real window on a 64-node local testnet (offscreen), for the README:
# resources/screenshots/{main-window,routing,lookup,traffic,packets,items,activity}.png and -dark
# variants (the Activity view crawls a simulated Mainline for 3 minutes: about 4 minutes each).
.PHONY: screenshots
screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python tools/screenshots.py resources/screenshots
	QT_QPA_PLATFORM=offscreen $(BIN)/python tools/screenshots.py resources/screenshots --dark
