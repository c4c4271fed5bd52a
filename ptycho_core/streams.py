"""Every random stream of a study, and the policy that keeps them apart (docs/DESIGN.md section 9, lesson 14).

**Policy.** Each draw comes from its own ``numpy.random.default_rng(entropy)``
(or a seed derived from one) whose entropy list starts with the seed it
belongs to and a stream id from this module; the list is recorded in the
artifact it makes. Streams never share a generator, so changing how one
thing is drawn (the size of the training split, the number of groups, the
network) never changes another (the test noise, the scan).

=====================  ========================================================  ================
stream                 entropy                                                   recorded in
=====================  ========================================================  ================
replicate's objects    ``SeedSequence([object.seed, 103, seed])`` -> int, the     ground truth
                       seed of the replicate's draw (``train_seed`` likewise)
object amplitude map   ``[object seed, 101]`` (that drawn seed)                  dataset metadata
object phase map       ``[object seed, 102]``                                    dataset metadata
scan jitter            ``[seed, 1]`` (one scan per replicate, every dose)        dataset metadata
Poisson noise          ``[seed, 2, dose_key(dose), 0 train | 1 test]``           dataset metadata
training groups        ``[seed, 3, *view, 0, *split]``                           view file
free pixels            ``[seed, 5]`` (one mask per replicate, both refiners)     refined bundle, reconstruction
network training       ``SeedSequence([seed, 4, *method, 0, *view])`` -> int     bundle sidecar
pty-chi                the replicate seed (``torch.manual_seed``, pty-chi's own)  reconstruction
pty-chi forward check  ``[seed, 77]`` (a random test object, not the study's)    sentinel
=====================  ========================================================  ================

``seed`` is the replicate seed of the study (``seeds``); ``*view`` and
``*method`` are the UTF-8 bytes of the view name and canonical method id.
"""

from __future__ import annotations

import numpy as np

OBJECT_AMPLITUDE = 101
OBJECT_PHASE = 102
OBJECT_REPLICATE = 103
SCAN = 1
NOISE = 2
GROUPS = 3
TRAINING = 4
FREE_PIXELS = 5
PTYCHI_FORWARD_CHECK = 77
#: Sub-stream of each split (Poisson noise).
SPLITS = {"train": 0, "test": 1}


def object_entropy(object_seed: int, quantity: str) -> list[int]:
    """Entropy of an object's ``"amplitude"`` or ``"phase"`` map."""
    stream = {"amplitude": OBJECT_AMPLITUDE, "phase": OBJECT_PHASE}[quantity]
    return [int(object_seed), stream]


def replicate_object_seed(object_seed: int, seed: int) -> int:
    """The object seed of replicate ``seed``: each replicate draws its own object of the family.

    Also the training object's (from ``train_seed``), so that a replicate redraws both; two replicates, or a
    study object and a training object, share a draw only if their seeds collide in 32 bits.
    """
    ss = np.random.SeedSequence([int(object_seed), OBJECT_REPLICATE, int(seed)])
    return int(ss.generate_state(1)[0])


def dose_key(dose: float) -> int:
    """Exact integer key of a dose for seeding (the bits of the float64)."""
    return int(np.array(float(dose), dtype=np.float64).view(np.uint64))


def scan_entropy(seed: int) -> list[int]:
    """Entropy of the scan jitter of one replicate (the same scan at every dose)."""
    return [int(seed), SCAN]


def noise_entropy(seed: int, dose: float, split: str) -> list[int]:
    """Entropy of the Poisson noise of one split at one dose."""
    return [int(seed), NOISE, dose_key(dose), SPLITS[split]]


def group_entropy(seed: int, view: str, split: str) -> list[int]:
    """Entropy of the training-group draw of one view and split."""
    return [int(seed), GROUPS, *view.encode(), 0, *split.encode()]


def training_seed(seed: int, method: str, view: str, draw: int = 0) -> int:
    """Integer seed of one training (or refinement) job: Keras' seed and the batch order.

    ``draw`` (``training.seed_draw``): another draw of the training seeds on the same data; draw 0 is the
    study's (its entropy has no draw term, so the seeds of studies before the key existed are unchanged).
    """
    method_id = str(getattr(method, "value", method))  # a Method or its canonical id
    extra = [] if int(draw) == 0 else [1, int(draw)]
    ss = np.random.SeedSequence([int(seed), TRAINING, *method_id.encode(), 0, *view.encode(), *extra])
    return int(ss.generate_state(1)[0])


def free_pixel_entropy(seed: int) -> list[int]:
    """Entropy of the free-pixel mask of one replicate (the detector pixels both refiners hold out)."""
    return [int(seed), FREE_PIXELS]


def ptychi_seed(seed: int) -> int:
    """Seed of a pty-chi reconstruction (torch and pty-chi's ``random_seed``): the replicate seed."""
    return int(seed)


def forward_check_entropy(seed: int) -> list[int]:
    """Entropy of the random object of the pty-chi forward-model check."""
    return [int(seed), PTYCHI_FORWARD_CHECK]
