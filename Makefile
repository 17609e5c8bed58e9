# Two commands on a fresh clone that has Python 3.11 and access to the package registry:
#   make report   create .venv, install the package, run the reports on the sample fleet
#   make test     create or update the same .venv with the dev extras, run the test suite
# Extra arguments: make report REPORT_ARGS="--since 7d"; make test PYTEST_ARGS="-m 'not slow'"

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reports executed at the same time; each kernel holds the selected heartbeats in memory
# (about 1.6 GB for the whole sample fleet in the fleet overview).
JOBS ?= 2
REPORT_ARGS ?=
PYTEST_ARGS ?=

.PHONY: report test clean-reports

report: $(VENV)/.installed
	$(BIN)/fleet-report run --jobs $(JOBS) $(REPORT_ARGS)

# pytest exits with 5 when it collected no tests. A suite that tests nothing must not
# pass, so make fails as for any other status, with a line that says why.
test: $(VENV)/.installed-dev
	@status=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then \
		echo "error: pytest collected no tests (exit status 5); check PYTEST_ARGS and tests/" >&2; \
	fi; \
	exit $$status

clean-reports:
	rm -rf reports/2*/ reports/index.html

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: $(PYTHON) is older than Python 3.11; run make PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The stamps make an install run again only when pyproject.toml changed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.installed
