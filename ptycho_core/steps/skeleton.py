"""The skeleton every workflow step follows (docs/DESIGN.md section 2).

A step verifies the sentinels of its inputs, does its work, writes its
artifacts, reloads and checks them, and only then writes its own sentinel.
:class:`Step` holds everything but the work::

    with Step("simulate", study, sentinel=out_sentinel, depends_on=("physics",),
              input_sentinels=[gt_sentinel], extra={"dose": dose}) as step:
        ...                                   # write the artifacts
        step.inputs += [gt_path]
        step.outputs += [out_train, out_test]
        step.checks["n_train"] = n            # values recorded in the sentinel
        require(out_train, "dose scaling", ok, "expected mean ... != dose ...")

On entry every input sentinel is verified (its outputs unchanged since they
were checked); on a normal exit the sentinel is written with the inputs
(files, then their sentinels), outputs, checks, the whole-study config hash,
the hashes of the configuration sections the step ``depends_on``
(:data:`ptycho_core.config.SECTION_GROUPS`) and the wall time. If the body
raises, nothing is written: Snakemake then removes the incomplete outputs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from ptycho_core.config import StudyConfig
from ptycho_core.io.sentinel import ArtifactCheckError, verify_sentinel, write_sentinel

__all__ = ["Step", "require"]


def require(artifact: str | os.PathLike, name: str, ok: bool, detail: str) -> None:
    """Raise :class:`ArtifactCheckError` naming ``artifact`` and the check ``name`` unless ``ok``."""
    if not ok:
        raise ArtifactCheckError(f"{os.fspath(artifact)}: check '{name}' failed: {detail}")


@dataclass
class Step:
    """One run of a workflow step: input sentinels verified on entry, own sentinel written on success."""

    name: str
    study: StudyConfig
    sentinel: str | os.PathLike
    depends_on: Sequence[str] = ()
    input_sentinels: Sequence[str | os.PathLike] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    record: dict | None = field(default=None, init=False)
    _t0: float = field(default=0.0, init=False, repr=False)

    def __enter__(self) -> "Step":
        self._t0 = time.perf_counter()
        for s in self.input_sentinels:
            verify_sentinel(s)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.record = write_sentinel(
                self.sentinel,
                step=self.name,
                inputs=[*map(str, self.inputs), *map(str, self.input_sentinels)],
                outputs=[str(p) for p in self.outputs],
                checks=self.checks,
                config_hash=self.study.config_hash(),
                section_hashes=self.study.section_hashes(*self.depends_on),
                wall_time_s=self.elapsed(),
                extra=self.extra,
            )
        return False

    def elapsed(self) -> float:
        """Seconds since the step started."""
        return time.perf_counter() - self._t0
