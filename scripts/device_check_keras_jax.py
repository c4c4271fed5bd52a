"""Device check: the Keras physics and models on another backend (JAX, GPU if present).

Checks that ptycho_core's Keras code uses no backend-specific call:
1. far-field intensity of the physics layer equals the NumPy simulator's (float32 tolerance);
2. the gridsize-2 merge/extract with integer offsets returns the patches on their support;
3. a PtychoPINN training model trains a few epochs on synthetic data (loss finite, decreasing),
   with the throughput in groups per second for N = 32 and N = 64, at float32 and with the
   bfloat16 body (training.precision: mixed_bfloat16);
4. the object model saves and reloads in safe mode with identical predictions.
Run: KERAS_BACKEND=jax python scripts/device_check_keras_jax.py
"""

import os
import sys
import tempfile
import time

import keras
import numpy as np

from ptycho_core.nn import models, training
from ptycho_core.nn import physics as phys
from ptycho_core.physics import forward

print("backend", keras.backend.backend(), "keras", keras.__version__)
if keras.backend.backend() == "jax":
    import jax

    print("jax devices", jax.devices())

rng = np.random.default_rng(0)
ok = True

# 1. physics vs simulator
N = 32
psi = (rng.standard_normal((3, 4, N, N)) + 1j * rng.standard_normal((3, 4, N, N))).astype(np.complex64)
I_k = np.asarray(phys.far_field_intensity(psi.real, psi.imag))
I_np = forward.far_field_intensity(psi.astype(np.complex128))
err = float(np.abs(I_k - I_np).sum() / I_np.sum())
print(f"1. far-field relative error vs NumPy simulator: {err:.2e}")
ok &= err < 1e-5

# 2. merge/extract, integer offsets
obj = np.exp(1j * rng.uniform(0, 1, (96, 96))) * rng.uniform(0.5, 1, (96, 96))
offs = np.array([[[-3.0, -3.0], [3.0, -3.0], [-3.0, 3.0], [3.0, 3.0]]], dtype=np.float32)
centre = np.array([48.0, 48.0])
pos = centre + offs[0]
patches = forward.extract_patches(obj, pos[:, 0], pos[:, 1], N)[None]
M = models.canvas_size_for(offs, N)
w = phys.support_window(N)
c_re, c_im, c_w = phys.merge_patches(patches.real.astype(np.float32), patches.imag.astype(np.float32), w, offs, M)
e_re, e_im = phys.extract_patches(c_re, c_im, c_w, offs, N)
out = np.asarray(e_re) + 1j * np.asarray(e_im)
inner = w == 1
err2 = float(np.abs(out - patches)[:, :, inner].max())
print(f"2. merge/extract max error on the support: {err2:.2e}")
ok &= err2 < 1e-4


# 3. training throughput
def train_run(N, n_groups, epochs, batch, precision):
    n = n_groups
    yy, xx = np.mgrid[:N, :N] - N // 2
    probe = (10 * np.exp(-(xx**2 + yy**2) / (2 * (N / 10) ** 2))).astype(np.complex64)
    positions = np.column_stack([rng.uniform(N, 3 * N, n), rng.uniform(N, 3 * N, n)])
    big = np.exp(1j * rng.uniform(0, 1, (4 * N, 4 * N))) * 0.9
    pt = forward.extract_patches(big, positions[:, 0], positions[:, 1], N)
    counts = rng.poisson(forward.expected_counts(probe.astype(np.complex128), pt)).astype(np.float32)
    sq = np.sqrt(counts)
    groups = np.stack([np.arange(n), np.roll(np.arange(n), 1), np.roll(np.arange(n), 2), np.roll(np.arange(n), 3)], 1)
    arch = models.ArchitectureConfig(filters=(32, 64, 128), amplitude_max=2.0, precision=precision)
    om = models.build_object_model(N, 4, training.input_scale(sq, N), arch, "pinn")
    canvas = models.canvas_size_for(training.group_offsets(positions, groups), N)
    tm = models.build_pinn_training_model(om, probe, canvas)
    tm.compile(optimizer=keras.optimizers.Adam(1e-3), loss=models.poisson_loss)
    batches = training.GroupBatches(sq, positions, groups, batch, rng=np.random.default_rng(1))
    tm.fit(batches, epochs=1, verbose=0)  # compile / warm-up
    t = time.perf_counter()
    h = tm.fit(batches, epochs=epochs, verbose=0).history["loss"]
    dt = time.perf_counter() - t
    print(
        f"3. N={N}, {precision}: {n} groups x {epochs} epochs in {dt:.1f} s = {n * epochs / dt:.0f} groups/s; "
        f"loss {h[0]:.4g} -> {h[-1]:.4g}"
    )
    return om, sq, h


for precision in models.PRECISIONS:
    om, sq, h = train_run(32, 2048, 5, 32, precision)
    ok &= bool(np.all(np.isfinite(h)) and h[-1] < h[0])
    train_run(64, 2048, 3, 32, precision)

# 4. save / reload in safe mode
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "m.keras")
    om.save(path)
    re = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = np.stack([sq[:8]] * 4, -1)
    a0, p0 = om.predict(x, verbose=0)
    a1, p1 = re.predict(x, verbose=0)
    err4 = float(max(np.abs(np.asarray(a0) - np.asarray(a1)).max(), np.abs(np.asarray(p0) - np.asarray(p1)).max()))
    print(f"4. reload max difference: {err4:.2e}")
    ok &= err4 <= 1e-5

print("DEVICE CHECK", "PASSED" if ok else "FAILED")
sys.exit(0 if ok else 1)
