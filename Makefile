# The two set-up commands of the README: `make demo` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.installed
TSTAMP  := $(VENV)/.installed-test
JOBS    ?= 2

.PHONY: demo test test-slow test-all bench lint docs clean

$(PY):
	@py=$$(sh scripts/find-python) && echo "creating $(VENV) with $$py" && "$$py" -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet -e .
	@touch $@

$(TSTAMP): $(STAMP)
	$(PIP) install --quiet -e ".[test]"
	@touch $@

## make demo: create .venv, install, run the demo on the embedded data set
demo: $(STAMP)
	$(VENV)/bin/bayeslmm demo --out demo-out

## make test: install the test extras and run the suite, without the heavy checks marked slow
## (the brms/rstan and GEMMA peer runs, calibrations): under 10 minutes on 2 cores
# --dist loadgroup: tests marked xdist_group share expensive fixtures (GEMMA runs, brute-force
# optima) on one worker; the rest are balanced as usual.
test: $(TSTAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --durations=15 -m "not slow"

## make test-slow: the checks marked slow only (CI runs them after make test)
test-slow: $(TSTAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --durations=15 -m slow

## make test-all: both
test-all: test test-slow

bench: $(TSTAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) benchmarks/bench_reml.py
	$(PY) benchmarks/bench_assoc.py
	OPENBLAS_NUM_THREADS=2 $(PY) benchmarks/bench_posterior.py

lint: $(TSTAMP)
	$(VENV)/bin/ruff check .

docs: $(STAMP)
	$(PIP) install --quiet -e ".[docs]"
	$(PY) docs/build.py

clean:
	rm -rf $(VENV) demo-out docs/_build .pytest_cache
