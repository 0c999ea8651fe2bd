# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of torch is installed first, so that the package's own
# `torch>=...` requirement is already satisfied and pulls no CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -m "not slow" -n 2

.PHONY: demo test test-slow test-all bench lint doc clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[test,lint]"
	touch $@

$(VENV)/.installed-doc: $(VENV)/.installed
	$(PIP) install --quiet -e ".[doc]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) install --quiet -e ".[bench]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m sklearn_deepclust demo

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

test-all: $(VENV)/.installed
	$(PY) -m pytest -n 2

bench: $(VENV)/.installed-bench
	$(PY) -m benchmarks quality imbalanced discovery engine scale neighbors sinkhorn

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check sklearn_deepclust tests benchmarks examples doc
	$(VENV)/bin/ruff format --check sklearn_deepclust tests benchmarks examples doc

# HTML in doc/_build/html; warnings are errors and every example in
# examples/ runs (the gallery).
doc: $(VENV)/.installed-doc
	$(VENV)/bin/sphinx-build -b html -W --keep-going doc doc/_build/html

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis \
		doc/_build doc/generated doc/auto_examples
