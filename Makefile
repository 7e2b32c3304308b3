# make audit [CONFIG=configs/x.yaml] [ARGS="--baseline reports/old/summary.json"]
# make history [RUNS="reports/*/summary.json"] | make test | make bench | make validate | make demo-data
# The first use creates .venv and installs the package with its dev, ray, hub, mlflow and legacy extras; again only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= configs/demo.yaml
ARGS ?=
TEST_WORKERS ?= 2

RUNS ?= reports/*/summary.json

.PHONY: install audit validate history test bench demo-data clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray,hub,mlflow,legacy]'
	touch $(STAMP)

install: $(STAMP)

# make's own exit status is 2 for any failed recipe; for the audit's exact exit code (0/1/2/3)
# run .venv/bin/python -m pipeline audit CONFIG, as a CI step should.
audit: $(STAMP)
	$(PY) -m pipeline audit $(CONFIG) $(ARGS)

validate: $(STAMP)
	$(PY) -m pipeline validate $(CONFIG)

history: $(STAMP)
	$(PY) -m pipeline history $(RUNS) $(ARGS)

# the suite on TEST_WORKERS processes (pytest-xdist; 2 by default, the CI machine's cores); TEST_WORKERS=0 runs it in one
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench.py $(ARGS)

demo-data: $(STAMP)
	$(PY) data_samples/make_shapes.py
	$(PY) data_samples/make_vit.py
	$(PY) data_samples/make_legacy.py
	$(PY) data_samples/make_antialias.py

clean:
	rm -rf reports/*/ test-artifacts .pytest_cache
