# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install bench lint screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv || true

# uv installs the stack in ~1.5 s where pip takes ~10 s; pip is the fallback.
# Bytecode is compiled at install time: without it every CLI start recompiles (~1.4 s).
install: $(BIN)/python
	@if [ -x $(BIN)/uv ]; then \
		$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -e '.[test]'; \
	else \
		$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'; \
	fi
	@$(BIN)/python -m compileall -q syncdash

demo: install
	$(BIN)/syncdash demo

test: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# ruff; the layer contracts (import-linter, see pyproject.toml); no import cycles or private names crossing
# modules (tools/check_imports.py); mypy over the package.
lint: install
	$(BIN)/ruff check syncdash syncdash_demo tests bench tools screenshots
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tools/check_imports.py
	$(BIN)/mypy

# Both benches run even when the first misses a target; the exit code is non-zero if either did.
# The REST bench times dlt too once bench/.venv-dlt exists (`python bench/rest_load.py --with-dlt` creates it).
bench: install
	rc=0; $(BIN)/python bench/csv_load.py || rc=1; $(BIN)/python bench/rest_load.py || rc=1; exit $$rc

# Every console screen the snapshot tests cover, and a dry run, on a fixed store: screenshots/<name>.svg and .png
# (PNGs by headless Chromium, else rsvg-convert; SVGs only when neither is installed). See screenshots/generate.py.
screenshots: install
	$(BIN)/python screenshots/generate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
