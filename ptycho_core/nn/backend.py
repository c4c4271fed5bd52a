"""The Keras backend of a training or refinement job: threads, deterministic ops, and the record of how a model
was computed."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def configure_backend(threads: int) -> None:
    """Thread settings and deterministic ops of the Keras backend (TensorFlow), devices logged."""
    import keras

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


def compute_record(fit_model) -> dict:
    """How a model was computed: backend, the body's dtype policy, XLA or not, devices (recorded in bundles).

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
    if keras.backend.backend() == "tensorflow":
        record["devices"] = _tensorflow_devices()
    return record
