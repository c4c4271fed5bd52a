#!/usr/bin/env bash
# Run by Snakemake after building study.yaml (--sdm conda): install ptycho_core into it.
exec bash "$(dirname "$0")/install-ptycho-core.sh"
