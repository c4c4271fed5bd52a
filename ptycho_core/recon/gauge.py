"""Gauge-consistent patches: each unit's constant phase solved over the overlaps.

A diffraction pattern, or a group of them reconstructed together, cannot see
its constant phase: |F(P O e^{ic})|^2 = |F(P O)|^2. A network therefore
returns each unit (a PtychoPINN group, a Baseline patch) in a gauge of its
own, and averaging units in different gauges erases the object's
low-frequency phase. Overlapping units see the same object pixels, so their
relative phases are measurable without the ground truth:

    h_kl = sum_x w_k(x) O_k(x) conj(w_l(x) O_l(x))

over the pixels patch k and patch l share, with w = |P|^2 the probe weight
(:func:`ptycho_core.recon.stitch.probe_window`: the data constrain the object
where the probe is bright). If O_k = O e^{i t_k}, then h_kl = c_kl
e^{i (t_k - t_l)} with c_kl >= 0. Summed over the members of each unit
(pairs inside one unit carry no information and are left out) this is the
Hermitian matrix H of angular synchronisation; the leading eigenvector of
its degree-normalised form D^{-1/2} H D^{-1/2} has phases t (exactly, for
consistent patches: the matrix is diag(e^{it}) C diag(e^{-it}) with C >= 0,
whose Perron vector is positive). Each connected set of overlapping units
is solved on its own; a unit that overlaps nothing keeps offset 0.

The global constant is a free gauge of the whole reconstruction (scoring
removes it by one policy for every method); it is fixed here so that the
degree-weighted circular mean of the offsets is zero, i.e. the networks'
average gauge is kept.

Reported: the offsets' circular spread, sqrt(-2 ln R) with R the mean
resultant length (0 when every unit already shared one gauge), and the
consistency residual, the |h|-weighted RMS over unit pairs of the phase of
h_gh e^{-i (t_g - t_h)} (0 when the overlaps agree exactly after the
correction; noise and model error raise it).

Memory is that of the patches moved onto the pixel grid (n x P^2 complex64
plus float32); pairs are processed grouped by their integer offset, each
group one vectorised product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from scipy.spatial import cKDTree

from ptycho_core.recon.stitch import to_grid

#: Components up to this many units are solved with a dense eigendecomposition, larger ones with Lanczos
#: (eigsh, the leading eigenvector only). Measured on the Baseline's 1,444 units of a dense view of the default
#: study (a 1444 x 1444 matrix, 819,414 non-zeros): dense eigh 6.4 s, eigsh 0.22 s, the same vector (overlap 1 -
#: 1e-16; leading eigenvalues 0.9976, 0.9685).
DENSE_LIMIT = 256


@dataclass(frozen=True)
class GaugeSolution:
    """Phase offset of each unit (multiply its patches by exp(-1j * offset)) and diagnostics."""

    offsets: np.ndarray  # (n_units,) radians
    spread_rad: float
    residual_rad: float
    n_pairs: int
    n_components: int

    def summary(self) -> dict:
        return {
            "n_units": int(self.offsets.size),
            "offset_spread_rad": self.spread_rad,
            "consistency_residual_rad": self.residual_rad,
            "n_unit_pairs": self.n_pairs,
            "n_components": self.n_components,
        }


def _pair_products(a: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (k, l) of patches that share pixels, and h_kl over the shared pixels."""
    P = a.shape[-1]
    pairs = cKDTree(base).query_pairs(r=P - 1, p=np.inf, output_type="ndarray")
    if pairs.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.complex128)
    k, l = pairs[:, 0], pairs[:, 1]
    d = base[l] - base[k]  # (dx, dy): pixel u of patch k is pixel u - d of patch l
    h = np.zeros(k.size, dtype=np.complex128)
    keys = (d[:, 1] + P) * (2 * P + 1) + (d[:, 0] + P)
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    for sel in np.split(order, bounds):
        dx, dy = int(d[sel[0], 0]), int(d[sel[0], 1])
        r0, r1, c0, c1 = max(0, dy), min(P, P + dy), max(0, dx), min(P, P + dx)
        ak = a[k[sel], r0:r1, c0:c1]
        al = a[l[sel], r0 - dy : r1 - dy, c0 - dx : c1 - dx]
        h[sel] = np.sum(ak.astype(np.complex128) * np.conj(al), axis=(1, 2))
    return k, l, h


def _leading_phases(H: scipy.sparse.csr_matrix) -> np.ndarray:
    """Phases of the leading eigenvector of the degree-normalised Hermitian H (one component)."""
    m = H.shape[0]
    if m == 1:
        return np.zeros(1)
    degree = np.asarray(abs(H).sum(axis=1)).ravel()
    s = scipy.sparse.diags(1.0 / np.sqrt(degree))
    Hn = s @ H @ s
    if m <= DENSE_LIMIT:
        _, vecs = np.linalg.eigh(Hn.toarray())
        v = vecs[:, -1]
    else:
        _, vecs = scipy.sparse.linalg.eigsh(Hn, k=1, which="LA", v0=np.ones(m, dtype=np.complex128), tol=1e-10)
        v = vecs[:, 0]
    z = np.exp(1j * np.angle(v))
    return np.angle(z * np.conj(np.sum(degree * z)))  # in (-pi, pi], degree-weighted circular mean zero


def synchronise(
    patches: np.ndarray, positions: np.ndarray, window: np.ndarray, units: np.ndarray | None = None
) -> GaugeSolution:
    """Solve each unit's constant phase from the overlaps of its patches with other units'.

    ``patches`` (n, P, P) complex at ``positions`` (n, 2) = (x, y) (the
    convention of :mod:`ptycho_core.recon.stitch`), ``window`` (P, P) the probe
    weight, ``units`` (n,) the unit of each patch (default: every patch its
    own unit). No ground truth is involved.
    """
    patches = np.asarray(patches)
    positions = np.asarray(positions, dtype=np.float64)
    n = patches.shape[0]
    units = np.arange(n) if units is None else np.asarray(units, dtype=np.int64)
    if patches.ndim != 3 or positions.shape != (n, 2) or units.shape != (n,):
        raise ValueError(
            "synchronise: expected patches (n, P, P), positions (n, 2), units (n,); "
            f"found {patches.shape}, {positions.shape}, {units.shape}"
        )
    n_units = int(units.max()) + 1 if n else 0
    a, _, base = to_grid(patches, window, positions)
    k, l, h = _pair_products(a, base)
    gk, gl = units[k], units[l]
    between = gk != gl
    gk, gl, h = gk[between], gl[between], h[between]
    H = scipy.sparse.coo_matrix(
        (np.concatenate([h, np.conj(h)]), (np.concatenate([gk, gl]), np.concatenate([gl, gk]))),
        shape=(n_units, n_units),
    ).tocsr()  # duplicates (several member pairs of two units) are summed
    offsets = np.zeros(n_units)
    n_comp, label = scipy.sparse.csgraph.connected_components(abs(H) > 0, directed=False)
    for c in range(n_comp):
        idx = np.flatnonzero(label == c)
        offsets[idx] = _leading_phases(H[idx][:, idx])
    R = float(np.abs(np.mean(np.exp(1j * offsets)))) if n_units else 1.0
    upper = scipy.sparse.triu(H, k=1).tocoo()
    if upper.nnz:
        eps = np.angle(upper.data * np.exp(-1j * (offsets[upper.row] - offsets[upper.col])))
        residual = float(np.sqrt(np.sum(np.abs(upper.data) * eps**2) / np.sum(np.abs(upper.data))))
    else:
        residual = 0.0
    return GaugeSolution(
        offsets=offsets,
        spread_rad=float(np.sqrt(-2.0 * np.log(min(max(R, 1e-300), 1.0)))),
        residual_rad=residual,
        n_pairs=int(upper.nnz),
        n_components=int(n_comp),
    )


def apply_offsets(patches: np.ndarray, solution: GaugeSolution, units: np.ndarray | None = None) -> np.ndarray:
    """The patches brought to one gauge: each multiplied by exp(-1j * offset of its unit)."""
    units = np.arange(patches.shape[0]) if units is None else np.asarray(units, dtype=np.int64)
    return patches * np.exp(-1j * solution.offsets[units])[:, None, None].astype(
        np.complex64 if patches.dtype == np.complex64 else np.complex128
    )
