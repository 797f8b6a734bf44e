# faithbench: `make demo` runs the quick suite, `make test` runs the tests, `make docs` builds the site.
# Both create (or reuse) a virtual environment in .venv and install the package into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test docs bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import faithbench, torch, timm, captum, pytorch_grad_cam, quantus"
	touch $@

demo: install
	$(VENV)/bin/faithbench run

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

docs: install
	$(PY) -m mkdocs build --strict

bench: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest benchmarks/perf --benchmark-only -p no:cacheprovider -o addopts=""

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks site
