# `make test` and `make demo` do all the set-up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e '.[dev,serve]' $(foreach p,$(PLUGIN_DIRS),-e $(p)[test])
	$(VENV)/bin/fieldwise local pull
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check src tests plugins benchmarks examples
	$(VENV)/bin/ruff format --check src tests plugins benchmarks examples
	$(VENV)/bin/mypy src/fieldwise $(wildcard plugins/*/src/*) tests/typecheck

test: lint
	$(VENV)/bin/pytest

demo: install
	bash examples/demo.sh

bench: install
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV)
