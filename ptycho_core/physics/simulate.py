"""Simulation physics: dose scaling, Poisson counts, train/test datasets.

**Units.** The probe is stored in sqrt(photons) per pixel. It is scaled so
that the expected counts per pattern, sum(|P * O_patch|^2) (= sum(I) by
Parseval), averaged over every kept position of the base scan (train and
test together), equal the dose exactly. Counts ~ Poisson(I). The stored
``diffraction`` is sqrt(counts) in float32, from which the integer counts are
recovered exactly by rounding its square (for counts below about 4e6 per
pixel).

**Random streams** (:mod:`ptycho_core.streams`, recorded in the metadata):
object maps, scan jitter, and the Poisson noise of each split from its own
stream, so that the test data do not depend on how the training data are
made (their size, or a separate training object).

The probe's dose scaling averages over the study object's scanned positions
(the whole base scan: the test split covers all of it when a separate
training object holds the training split; otherwise both regions of the
cut), never over the training object's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ptycho_core.config import ConfigError, StudyConfig, dose_label
from ptycho_core.io.datasets import SCHEMA_VERSION, DiffractionSet
from ptycho_core.physics.forward import expected_counts, extract_patches, valid_position_range
from ptycho_core.physics.limits import BOUND, MAX_ARRAY_PIXELS
from ptycho_core.physics.probe import energy_within, make_probe, measure_fwhm_diameter, photons_per_illuminated_pixel
from ptycho_core.physics.scan import Scan, Split, make_scan, split_by_region, whole_scan_split
from ptycho_core.streams import SPLITS, noise_entropy, object_entropy, scan_entropy


def scale_probe_to_dose(probe_unit: np.ndarray, patches: np.ndarray, dose: float) -> tuple[np.ndarray, float]:
    """Scale a probe so that mean_j sum(|P O_j|^2) = dose. Returns (probe, scale)."""
    per_pattern = np.sum(np.abs(probe_unit[None] * patches) ** 2, axis=(-2, -1))
    mean = float(per_pattern.mean())
    if not mean > 0:
        raise ValueError("dose scaling: the probe transmits no intensity through the object")
    scale = float(np.sqrt(dose / mean))
    return probe_unit * scale, scale


def photon_stats(counts_per_pattern: np.ndarray, expected_per_pattern: np.ndarray) -> dict[str, float]:
    """Mean/min/max measured counts per pattern and the expected mean."""
    return {
        "n_patterns": int(counts_per_pattern.size),
        "expected_mean": float(expected_per_pattern.mean()),
        "measured_mean": float(counts_per_pattern.mean()),
        "measured_min": float(counts_per_pattern.min()),
        "measured_max": float(counts_per_pattern.max()),
    }


@dataclass(frozen=True)
class Simulation:
    """Both splits of one dose x seed, with the geometry they came from."""

    train: DiffractionSet
    test: DiffractionSet
    scan: Scan
    split: Split
    probe_diameter: float


@dataclass(frozen=True)
class Geometry:
    """Probe, base scan and split of one replicate: everything but the photons.

    Depends only on the configuration and the seed (not on the dose or the
    object's values), so it can be computed at configuration load to check
    that views and groups are feasible.
    """

    probe_unit: np.ndarray
    probe_diameter: float
    extent: tuple[float, float]
    scan: Scan
    split: Split


def scan_side(object_size: int, N: int, step: float) -> int:
    """Positions per axis of a scan with ``step`` pixels over the object's valid position range.

    The raster's grid side, floor((hi - lo) / step) + 1 (:func:`ptycho_core.physics.scan.raster_scan`, on the range
    of :func:`ptycho_core.physics.simulate.make_geometry`); a Fermat spiral keeps about as many positions, one per
    step^2 of the same square.
    """
    lo, hi = valid_position_range(object_size, N)
    return int(np.floor((float(np.floor(hi)) - lo) / step)) + 1


def scan_size_problem(object_size: int, N: int, step_fraction: float, probe_diameter: float) -> tuple[str, str] | None:
    """``(key, message)`` if the patterns of the scan (positions x N^2 pixels) exceed the bound, else None.

    ``probe_diameter`` is the probe's measured FWHM diameter in pixels; the step is ``step_fraction`` times it.
    """
    step = step_fraction * probe_diameter
    side = scan_side(object_size, N, step)
    pixels = side * side * N * N
    if pixels > MAX_ARRAY_PIXELS:
        return (
            "scan.step_fraction",
            f"expected a scan whose patterns (positions x N^2 pixels) stay within {BOUND}, "
            f"found {side} x {side} positions x {N}^2 = {pixels} pixels "
            f"(object.size {object_size}, N {N}, step = scan.step_fraction {step_fraction:g} x probe diameter "
            f"{probe_diameter:.3g} px = {step:.3g} px); raise scan.step_fraction or lower object.size",
        )
    return None


def check_scan_size(study: StudyConfig, probe_diameter: float, source: str = "config") -> None:
    """Refuse (:class:`ConfigError`) a scan whose patterns exceed the bound, before the scan is made.

    For a probe read from a file, whose diameter is known only once the file is read: call it with the measured
    diameter before :func:`ptycho_core.physics.scan.make_scan` (configuration load checks the other probe kinds).
    """
    problem = scan_size_problem(study.object.size, study.N, study.scan.step_fraction, probe_diameter)
    if problem is not None:
        key, message = problem
        raise ConfigError(f"{source}: key '{key}': {message}")


def make_geometry(study: StudyConfig, seed: int) -> Geometry:
    """Probe (unit peak), measured diameter, base scan and split for ``seed``."""
    probe_unit = make_probe(study.N, study.probe)
    diameter = measure_fwhm_diameter(probe_unit)
    check_scan_size(study, diameter)  # before the scan is made (a probe file's diameter is known only now)
    lo, hi = valid_position_range(study.object.size, study.N)
    hi = float(np.floor(hi))
    scan = make_scan(study.scan, lo, hi, diameter, np.random.default_rng(scan_entropy(seed)))
    if study.object.separate_training:
        split = whole_scan_split(scan)  # the study object needs no training region: the test scan covers it
    else:
        split = split_by_region(scan, study.split, lo, hi, diameter)
    return Geometry(probe_unit, diameter, (lo, hi), scan, split)


def simulate_dose(
    study: StudyConfig, obj: np.ndarray, dose: float, seed: int, provenance: dict, train_obj: np.ndarray | None = None
) -> Simulation:
    """Simulate the train and test datasets of one dose and replicate seed.

    ``train_obj``: the separate training object, required exactly when the
    configuration has one (``object.train_seed`` or a training file); the training split is then
    simulated on it over the whole base scan, the test split on ``obj``.
    One probe (one instrument) serves both.
    """
    N = study.N
    for name, o in (("object", obj), ("training object", train_obj)):
        if o is not None and o.shape != (study.object.size, study.object.size):
            raise ValueError(
                f"{name}: expected shape {(study.object.size,) * 2} from the configuration, found {o.shape}"
            )
    if (train_obj is None) == study.object.separate_training:
        raise ValueError(
            f"training object: object.train_seed is {study.object.train_seed}, training files "
            f"{study.object.source_files(training=True)}, "
            f"but a training object was {'not ' if train_obj is None else ''}given"
        )
    geo = make_geometry(study, seed)
    drawn = study.object.for_replicate(seed)  # the replicate's objects (recorded; the caller made them)
    probe_unit, diameter, scan, split = geo.probe_unit, geo.probe_diameter, geo.scan, geo.split
    lo, hi = geo.extent

    keep = np.concatenate([split.train, split.test])
    reference = np.concatenate([split.region_train, split.test])  # the study object's scanned positions
    reference_patches = extract_patches(obj, scan.x[reference], scan.y[reference], N)
    probe, scale = scale_probe_to_dose(probe_unit, reference_patches, dose)
    reference_mean = float(expected_counts(probe, reference_patches).sum(axis=(-2, -1)).mean())
    del reference_patches
    source = obj if train_obj is None else train_obj
    intensity, counts = [], []
    for name, idx, o in (("train", split.train, source), ("test", split.test, obj)):
        intensity.append(expected_counts(probe, extract_patches(o, scan.x[idx], scan.y[idx], N)))
        counts.append(np.random.default_rng(noise_entropy(seed, dose, name)).poisson(intensity[-1]).astype(np.float64))
    intensity, counts = np.concatenate(intensity), np.concatenate(counts)

    expected_pp = intensity.sum(axis=(-2, -1))
    counts_pp = counts.sum(axis=(-2, -1))
    n_train = split.train.size
    parts = {"train": slice(0, n_train), "test": slice(n_train, keep.size)}
    photons = {name: photon_stats(counts_pp[sl], expected_pp[sl]) for name, sl in parts.items()}
    photons["all"] = photon_stats(counts_pp, expected_pp)

    common = {
        "schema_version": SCHEMA_VERSION,
        "study": study.name,
        "N": N,
        "dose": float(dose),
        "dose_label": dose_label(dose),
        "photons_per_illuminated_pixel": photons_per_illuminated_pixel(dose, diameter),
        "seed": int(seed),
        "units": {
            "dose": "expected photons per pattern, mean over the study object's patterns",
            "photons_per_illuminated_pixel": "dose / (pi (D/2)^2), D the probe's FWHM diameter in object pixels",
            "diffraction": "sqrt(photon counts)",
            "probe": "sqrt(photons) per object pixel",
            "positions": "object pixels, (x, y) = (column, row) of the patch centre",
        },
        "probe": {
            **study.to_dict()["probe"],
            "fwhm_diameter_px": diameter,
            "energy_within_half_N_disc": energy_within(probe_unit, N / 2),
            "scale_sqrt_photons": scale,
            "dose_reference": {
                "positions": "the study object's scanned positions (training and test regions, or the whole scan)",
                "n_patterns": int(reference.size),
                "expected_mean": reference_mean,
            },
        },
        "scan": {
            **study.to_dict()["scan"],
            "step_px": scan.step,
            "grid_shape": list(scan.grid_shape) if scan.grid_shape else None,
            "n_base": int(scan.x.size),
            "extent_px": [lo, hi],
        },
        "split": {
            **study.to_dict()["split"],
            "boundary_px": split.boundary,
            "guard_px": split.guard,
            "n_train": int(split.train.size),
            "n_test": int(split.test.size),
            "n_dropped_in_guard": int(split.n_dropped),
            "training_object": split.training_object,
        },
        "photons": photons,
        "rng": {
            "object_amplitude": object_entropy(drawn.seed, "amplitude"),
            "object_phase": object_entropy(drawn.seed, "phase"),
            **(
                {}
                if drawn.train_seed is None
                else {
                    "training_object_amplitude": object_entropy(drawn.train_seed, "amplitude"),
                    "training_object_phase": object_entropy(drawn.train_seed, "phase"),
                }
            ),
            "scan": scan_entropy(seed),
            "noise": {name: noise_entropy(seed, dose, name) for name in SPLITS},
        },
        "provenance": provenance,
    }

    study_object = {**asdict(drawn), "shape": list(obj.shape), "role": "study object"}
    training_files = study.object.source_files(training=True)
    training_object = {**asdict(drawn.training_object()), "shape": list(obj.shape), "role": "training object"}
    objects = {
        "test": study_object,
        "train": study_object
        if train_obj is None
        else {**training_object, **({"source_files": training_files} if training_files else {})},
    }

    def make_set(name: str, idx: np.ndarray) -> DiffractionSet:
        sl = parts[name]
        return DiffractionSet(
            diffraction=np.sqrt(counts[sl]).astype(np.float32),
            xcoords=scan.x[idx].astype(np.float64),
            ycoords=scan.y[idx].astype(np.float64),
            probe=probe.astype(np.complex64),
            scan_index=scan.index[idx].astype(np.int64),
            metadata={**common, "split_name": name, "object": objects[name]},
        )

    return Simulation(make_set("train", split.train), make_set("test", split.test), scan, split, diameter)
