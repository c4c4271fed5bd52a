"""Workflow step ``study_config``: the validated study configuration as JSON, the input of the PtyChi rule's
own process.

The rule reruns only when a section the PtyChi jobs read changes (physics,
views, ptychi), so the JSON may hold an older value of a section they do not
read, as every artifact's recorded whole-study hash may: the section hashes
in the sentinels are the exact record.
"""

from __future__ import annotations

import json
from pathlib import Path

from ptycho_core.io.npz import atomic_write_text


def run_study_config(study: dict, *, out_path: str | Path) -> None:
    """Write the configuration mapping ``study`` as sorted, indented JSON to ``out_path`` (atomically)."""
    atomic_write_text(out_path, json.dumps(study, indent=2, sort_keys=True) + "\n")
