# make audit [CONFIG=configs/x.yaml] [ARGS="--baseline reports/old/summary.json"]
# make history [RUNS="reports/*/summary.json"] | make test | make bench | make validate | make demo-data | make docs | make docs-cards
# The first use creates .venv and installs the package with its dev, ray, hub, mlflow and legacy extras; again only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= configs/demo.yaml
ARGS ?=
TEST_WORKERS ?= 2

RUNS ?= reports/*/summary.json

.PHONY: install audit validate history test bench demo-data docs docs-cards clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,docs,ray,hub,mlflow,legacy]'
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

# the guide (docs/, MkDocs + Material): broken links and unknown pages fail the build; the config reference is generated
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# the guide's finding cards, screenshotted from the demo reports (audits the demos first: about 30 minutes on 2 cores;
# RUNS_DIR=folder reuses audits already there, <folder>/<config stem>/report.html)
docs-cards: $(STAMP)
	$(PY) docs/cards.py $(RUNS_DIR)

demo-data: $(STAMP)
	$(PY) data_samples/make_shapes.py
	$(PY) data_samples/make_vit.py
	$(PY) data_samples/make_legacy.py
	$(PY) data_samples/make_antialias.py

clean:
	rm -rf reports/*/ test-artifacts .pytest_cache site
