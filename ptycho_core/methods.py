"""The methods of a study: canonical identifiers and the one registry that describes them.

The canonical id (:class:`Method`) is used in every file and path; display
labels and colours are separate. :data:`REGISTRY` says, for each method,
how it is produced, so that the steps iterate over it instead of naming
methods:

- ``trained``: the ``train`` step trains a network bundle on the view's training split
  (``grouped``: on the view's groups of C patterns, else on single
  patterns; ``supervised``: with the ground-truth object of the training
  region as target, else from measured counts only); a method that is not
  ``per_view`` is trained once per dose on every training pattern (rule
  ``train_per_dose``) and that one bundle reconstructs every view: a network
  that sees single patterns knows nothing of overlap, so a view would only
  shrink its training set;
- ``refined``: the ``refine`` step fine-tunes the bundle of the method it ``refines`` on
  the view's test counts with the same physics and Poisson loss (no labels:
  the data an iterative method gets);
- ``iterative``: an iterative reconstruction of the view's test counts in
  its own process, by the workflow rule (and step) ``reconstruct_step``.

Every ``trained`` or ``refined`` method is reconstructed by network
inference, gauge synchronisation and probe-weighted stitching (rule
``reconstruct_network``). Adding a trained network touches this registry and
its model (:mod:`ptycho_core.nn.models`); an iterative method this registry,
its engine (``recon/``), its step (``steps/``) and its rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Method(str, Enum):
    PTYCHOPINN = "PtychoPINN"
    PTYCHOPINN_TTR = "PtychoPINN_TTR"
    BASELINE = "Baseline"
    PTYCHI = "PtyChi"

    @property
    def spec(self) -> "MethodSpec":
        return REGISTRY[self]

    @property
    def label(self) -> str:
        """Human-readable label for figures and reports (never used as an identifier)."""
        return REGISTRY[self].label

    @classmethod
    def parse(cls, text: str) -> "Method":
        """The method of a canonical id; anything else is refused with the valid ids."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"method: expected one of {[m.value for m in cls]}, found {text!r}") from None


@dataclass(frozen=True)
class MethodSpec:
    label: str
    colour: str
    produced_by: str  # "trained" | "refined" | "iterative"
    grouped: bool = False  # networks: input is a group of C patterns (else one pattern)
    supervised: bool = False  # trained against the ground truth of the training region
    refines: Method | None = None  # refined: the trained method whose bundle is fine-tuned
    iterative_step: str | None = None  # iterative: the workflow rule and step that reconstruct with it
    per_view: bool = True  # trained: on the view's training split (else once per dose, on every training pattern)

    def __post_init__(self):
        if not self.per_view and (self.produced_by != "trained" or self.grouped):
            raise ValueError(f"{self.label}: only a trained single-pattern network can be trained once per dose")

    @property
    def network(self) -> bool:
        """Reconstructed by network inference and stitching."""
        return self.produced_by in ("trained", "refined")

    @property
    def reconstruct_step(self) -> str:
        """The workflow rule (and ``ptycho_core.steps`` module) that writes this method's reconstruction."""
        return "reconstruct_network" if self.network else self.iterative_step


REGISTRY: dict[Method, MethodSpec] = {
    Method.PTYCHOPINN: MethodSpec("PtychoPINN (unsupervised PINN)", "tab:blue", "trained", grouped=True),
    Method.PTYCHOPINN_TTR: MethodSpec(
        "PtychoPINN + test-time refinement", "tab:purple", "refined", grouped=True, refines=Method.PTYCHOPINN
    ),
    Method.BASELINE: MethodSpec("Baseline (supervised CNN)", "tab:orange", "trained", supervised=True, per_view=False),
    Method.PTYCHI: MethodSpec("pty-chi LSQML", "tab:green", "iterative", iterative_step="reconstruct_ptychi"),
}

TRAINED_METHODS = tuple(m for m in Method if m.spec.produced_by == "trained")
#: Trained once per dose (not per view): their bundle serves every view.
PER_DOSE_METHODS = tuple(m for m in TRAINED_METHODS if not m.spec.per_view)
REFINED_METHODS = tuple(m for m in Method if m.spec.produced_by == "refined")
NETWORK_METHODS = tuple(m for m in Method if m.spec.network)
ITERATIVE_METHODS = tuple(m for m in Method if m.spec.produced_by == "iterative")
