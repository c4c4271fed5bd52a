"""The configuration reference (``config/README.md``), rendered from the schema so that the two cannot drift.

``python -m ptycho_core.config_reference > config/README.md`` rewrites it;
``tests/test_config.py`` checks that the file equals :func:`render`.
"""

from __future__ import annotations

import json
from typing import Any

from ptycho_core.config import load_schema

HEADER = """# Configuration of a study

One YAML file describes one study. `config.yaml` is the default study (sized for a
2-core machine without GPU), `full.yaml` the full-size study for a GPU machine,
`test.yaml` the test-sized study the workflow tests run. Every key below is
optional: a missing key takes its default. Unknown keys and bad values are
refused before any job runs, naming the key. Write doses as plain numbers
(`10000`) or signed-exponent floats (`1.0e+4`): YAML reads `1e4` as text.

Runtime settings (threads, memory, GPUs) are not configuration: they live in the
Snakemake profiles (`workflow/profiles/default/`, `profiles/slurm/`).

This file is rendered from `workflow/schemas/config.schema.yaml`
(`python -m ptycho_core.config_reference > config/README.md`); edit the schema, not this file.
"""


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(value: Any) -> str:
    return "" if value is None else f"`{json.dumps(value)}`"


def render(schema: dict | None = None) -> str:
    """Markdown: the schema's description, then one section per top-level key with a table of its keys."""
    schema = load_schema() if schema is None else schema
    out = [HEADER.rstrip(), "", _one_line(schema.get("description", "")), ""]
    for name, spec in schema["properties"].items():
        out += [f"## `{name}`", "", _one_line(spec.get("description", ""))]
        if "default" in spec and not spec.get("properties"):
            out += ["", f"Default: {_default(spec['default'])}"]
        props = spec.get("properties", {})
        if props:
            out += ["", "| key | default | meaning |", "|---|---|---|"]
            for key, sub in props.items():
                out.append(
                    f"| `{name}.{key}` | {_default(sub.get('default'))} | {_one_line(sub.get('description', ''))} |"
                )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
