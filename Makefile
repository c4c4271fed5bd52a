# Set-up and entry points. `make study` and `make test` each create the virtual
# environment (.venv) on a fresh machine and install everything they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: venv study test lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

study: venv
	$(BIN)/snakemake --cores $(CORES)
	@echo "Results are under results/; logs under logs/; timings under benchmarks/."

lint: venv
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint

test: lint
	$(BIN)/pytest

clean:
	rm -rf results logs benchmarks .snakemake
