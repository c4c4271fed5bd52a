#!/usr/bin/env bash
# Installs the study's library, ptycho_core, into an environment of
# workflow/envs/: each <env>.post-deploy.sh calls it, and Snakemake runs that
# inside the freshly built environment (--sdm conda). The library is installed
# editable from the repository that holds this workflow, so the environment
# runs the same code as the Snakefile. For a workflow deployed from a remote
# source (no local repository), set PTYCHO_CORE_SOURCE to a path or a pip
# requirement of ptycho-core.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [ -n "${PTYCHO_CORE_SOURCE:-}" ]; then
    python -m pip install --no-deps "$PTYCHO_CORE_SOURCE"
elif [ -f "$root/pyproject.toml" ] && [ -d "$root/ptycho_core" ]; then
    python -m pip install --no-deps -e "$root"
else
    echo "post-deploy: no ptycho_core source at $root; set PTYCHO_CORE_SOURCE (a path or pip requirement of ptycho-core)" >&2
    exit 1
fi
