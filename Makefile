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
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check syncdash tests bench
	$(BIN)/ruff format --check syncdash tests bench

bench: install
	$(BIN)/python bench/csv_load.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
