"""The Keras backend of a training or refinement job: threads, deterministic ops, the precision the hardware
computes fastest, and the record of how a model was computed."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: ``training.precision`` that picks the body's dtype policy from the hardware (:func:`resolve_precision`).
AUTO_PRECISION = "auto"
#: CPU flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic, which oneDNN's bfloat16 kernels use.
#: Without them TensorFlow emulates bfloat16: on a 2-core AMD EPYC with AVX2 only, PtychoPINN's training step
#: at the default size ran 15.6 groups/s in mixed_bfloat16 against 58.6 in float32 (scripts/bench_throughput.py);
#: on a Xeon with AMX, mixed_bfloat16 is the faster one (about 1.5x at N = 32, 3-4x at N = 64).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (the first ``flags`` line of ``cpuinfo``); empty where the file cannot be read."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def accelerators() -> list[str]:
    """The accelerators (GPUs) the Keras backend computes on; empty on a CPU-only machine."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    return []


def resolve_precision(setting: str, *, gpus: list[str], flags: frozenset[str]) -> tuple[str, str]:
    """The body's dtype policy for ``training.precision`` (``auto``, ``float32`` or ``mixed_bfloat16``) and why.

    ``auto`` is ``mixed_bfloat16`` on an accelerator or on a CPU with one of
    :data:`BF16_CPU_FLAGS`, ``float32`` otherwise: the precision the hardware
    computes fastest (quality is the same either way: the physics, outputs
    and losses stay float32, and the measured phase scores agree within
    their seed spread; docs/DESIGN.md, "Precision policy"). A policy named
    explicitly is used as it is.
    """
    if setting != AUTO_PRECISION:
        return setting, "set in training.precision"
    if gpus:
        return "mixed_bfloat16", f"auto: accelerator {gpus[0]}"
    native = sorted(set(BF16_CPU_FLAGS) & flags)
    if native:
        return "mixed_bfloat16", f"auto: CPU computes bfloat16 natively ({', '.join(native)})"
    return "float32", f"auto: CPU without native bfloat16 (none of {', '.join(BF16_CPU_FLAGS)}): emulated, slower"


def training_precision(setting: str) -> tuple[str, str]:
    """:func:`resolve_precision` on this machine (after :func:`configure_backend`)."""
    precision, why = resolve_precision(setting, gpus=accelerators(), flags=cpu_flags())
    log.info("network precision: %s (%s)", precision, why)
    return precision, why


#: glibc's ``mallopt`` parameters (malloc.h) and the values a network job sets (:func:`keep_heap`).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
HEAP_TRIM_THRESHOLD_BYTES = 2**31 - 1
HEAP_TOP_PAD_BYTES = 256 * 2**20
#: glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): blocks below it come from the heap.
HEAP_MMAP_THRESHOLD_BYTES = 32 * 2**20


def keep_heap() -> bool:
    """Keep freed memory in the process's heap (glibc): no trimming back to the system, growth in steps of
    256 MiB, and every block under 32 MiB served from the heap. Returns whether the C library took the settings
    (False off Linux/glibc, where nothing changes).

    By default glibc returns the top of the heap to the system whenever 128 KiB
    are free there, and TensorFlow's CPU allocator frees and reallocates every
    step's activations, so each step mapped, faulted in and unmapped its
    memory again: about 1,500 mmap/munmap per training step of PtychoPINN at
    the default size (strace), a third of the job's CPU time in the kernel.
    Measured with scripts/bench_throughput.py (``--heap default`` against
    ``kept``): see its docstring. Numerics are untouched; the job's peak
    memory stays the peak it reached.

    The mmap threshold is set too, because setting the trim threshold freezes
    glibc's dynamic one wherever the process's history has left it: 128 KiB
    in a fresh process, a few MiB after TensorFlow has run (measured with
    mallinfo2). Frozen low, every block of 0.25-2 MiB was mapped and faulted
    in anew: in the test suite's end-to-end case (tests/test_pinn_correctness.py,
    inside the pytest process) PtychoPINN trained at 51 groups/s, against 80
    in a study job on the same AMD EPYC, and refinement spent as much system
    time as user time (about 250,000 page faults per second, strace: 680
    mmap/munmap per second of 0.26-1.6 MB). The study's own jobs happened to
    freeze it high enough (system time 3-5 s of 120 s in a refinement job;
    unchanged with this setting, and the refinement history bit-identical).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = (
        (M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD_BYTES),
        (M_TOP_PAD, HEAP_TOP_PAD_BYTES),
        (M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD_BYTES),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)


def configure_backend(threads: int, *, heap: str = "kept") -> None:
    """Thread settings and deterministic ops of the Keras backend (TensorFlow), devices logged; the process keeps
    its freed heap (:func:`keep_heap`) unless ``heap`` is ``"default"`` (benchmarks compare both)."""
    import keras

    if heap == "kept":
        log.info("heap kept in the process (glibc mallopt): %s", keep_heap())
    elif heap != "default":
        raise ValueError(f"heap: expected 'kept' or 'default', found {heap!r}")

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised in this process (tests): keep its threads
        log.warning("TensorFlow already initialised; thread settings left as they are")
    tf.config.experimental.enable_op_determinism()
    log.info("TensorFlow devices: %s", _tensorflow_devices())


def _tensorflow_devices() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices()]


def compute_record(fit_model, *, precision_choice: str | None = None) -> dict:
    """How a model was computed: backend, the body's dtype policy, XLA or not, devices (recorded in bundles);
    ``precision_choice``: why the training chose its policy (:func:`training_precision`).

    XLA (``jit_compile``) is Keras' "auto": off on a CPU-only TensorFlow
    (measured 3-4x slower than oneDNN's kernels here, scripts/bench_throughput.py)
    and off whenever op determinism is enabled, which every training job
    enables (configure_backend); recorded as resolved.
    """
    import keras

    policies = sorted(
        {layer.dtype_policy.name for layer in fit_model._flatten_layers() if hasattr(layer, "dtype_policy")}
    )
    record = {
        "backend": keras.backend.backend(),
        "dtype_policies": policies,
        "jit_compile": bool(fit_model.jit_compile),
    }
    if precision_choice is not None:
        record["precision_choice"] = precision_choice
    if keras.backend.backend() == "tensorflow":
        record["devices"] = _tensorflow_devices()
    return record
