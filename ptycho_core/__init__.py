"""Core library of the ptychography dose/overlap study.

Knows nothing about Snakemake: every function takes explicit arguments
(configuration dataclasses, arrays, paths) and returns values.
Modules:

- ``config``        study configuration: schema validation, frozen dataclasses
- ``probe``         probe synthesis (focused beam, disk) and FWHM measurement
- ``objects``       seeded procedural test objects
- ``scan``          scan trajectories and the train/test split
- ``forward``       patch extraction and the far-field forward model
- ``simulate``      dose scaling, Poisson counts, the phase C dataset builder
- ``data_contract`` NPZ datasets: save, load, validate (never pickle)
- ``npz_io``        deterministic, atomic NPZ writing and safe reading
- ``sentinel``      JSON sentinels recording verified artifacts
"""

__version__ = "0.1.0"
