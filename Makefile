# Set-up and entry points. `make study` and `make test` each create the virtual
# environment (.venv) on a fresh machine and install everything they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The PtyChi arm runs in its own environment: torch must not share one with TensorFlow.
VENV_PTYCHI := .venv-ptychi
CORES ?= 2

.PHONY: venv study test test-fast lint clean

venv: $(VENV)/.installed $(VENV_PTYCHI)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

$(VENV_PTYCHI)/.installed: requirements-ptychi.txt pyproject.toml
	$(PYTHON) -m venv $(VENV_PTYCHI) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV_PTYCHI); }
	echo '*' > $(VENV_PTYCHI)/.gitignore
	$(VENV_PTYCHI)/bin/pip install --upgrade pip
	$(VENV_PTYCHI)/bin/pip install -r requirements-ptychi.txt
	$(VENV_PTYCHI)/bin/pip install --no-deps -e .
	touch $@

study: venv
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html --report-stylesheet workflow/report/report.css
	@echo "Study done. Report: results/report.html (open it in a browser);"
	@echo "tables and figures: results/report/; logs: logs/; timings: benchmarks/."

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint

# The full suite, as CI runs it. The SLURM test installs and starts a local
# cluster, so it needs root and apt-get.
test: lint
	$(BIN)/pytest

# A few minutes, no root: everything but the Snakemake runs, the cluster and
# the slow correctness cases.
test-fast: venv
	$(BIN)/pytest -m "not workflow and not slow"

clean:
	rm -rf results logs benchmarks .snakemake
