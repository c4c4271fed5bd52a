"""Canonical method identifiers, used in every file; display labels are separate."""

from __future__ import annotations

from enum import Enum


class Method(str, Enum):
    PTYCHOPINN = "PtychoPINN"
    BASELINE = "Baseline"
    PTYCHI = "PtyChi"

    @property
    def label(self) -> str:
        """Human-readable label for figures and reports (never used as an identifier)."""
        return {"PtychoPINN": "PtychoPINN (unsupervised PINN)", "Baseline": "Baseline (supervised CNN)", "PtyChi": "pty-chi LSQML"}[
            self.value
        ]

    @classmethod
    def parse(cls, text: str) -> "Method":
        """The method of a canonical id; anything else is refused with the valid ids."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"method: expected one of {[m.value for m in cls]}, found {text!r}") from None


TRAINED_METHODS = (Method.PTYCHOPINN, Method.BASELINE)
