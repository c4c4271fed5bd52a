"""Core library of the ptychography dose/overlap study (design: ``docs/DESIGN.md``).

Knows nothing about Snakemake: every function takes explicit arguments
(configuration dataclasses, arrays, paths) and returns values. Importing
the package does no work. Where things live:

- ``study_files`` study files read strictly and merged, and which file set each key
- ``config``     the study configuration: schema validation, frozen dataclasses, section hashes;
  ``config_reference`` renders ``config/README.md`` from the schema
- ``methods``    the method registry: canonical ids, labels, colours, how each method is produced
- ``streams``    every random-stream id and the seeding policy
- ``code_hash``  which library files a workflow step can load, hashed (the rules' rerun trigger)
- ``physics/``   the simulated experiment, NumPy only: ``probe``, ``objects`` (procedural or from files), ``scan``,
  ``forward`` (patches, far field), ``simulate`` (dose scaling, Poisson counts)
- ``sampling/``  which patterns a method sees: ``views`` (nested subsets, groups), ``overlap``
  (group, neighbour and group-centre overlap)
- ``io/``        files: ``npz`` (atomic, deterministic, never pickled), the data contracts
  ``datasets`` (diffraction sets, ground truth), ``view_index``, ``reconstruction``, the
  JSON and CSV record contracts ``records``, and ``sentinel`` (sentinels and provenance)
- ``nn/``        the only package that imports Keras: ``physics`` (differentiable forward
  model), ``models``, ``training``, ``refinement`` (test-time), ``bundle``, ``backend``
- ``recon/``     from patterns to one object: ``stitch``, ``gauge`` (synchronisation),
  ``network`` (inference + stitching), ``ptychi`` (the pty-chi arm)
- ``evaluate/``  scoring and tables: ``metrics``, ``region`` (the evaluation region common to
  the views), ``rows`` (what the tidy rows name), ``tables`` (aggregation, statistics, deltas),
  ``verdicts`` (paired winners or ties, crossover doses with intervals), ``headline`` (the
  report's answer: landing page, summary lines, wide CSV), ``runtime``
- ``figures/``   every matplotlib figure
- ``steps/``     one module per workflow rule, the only code the workflow scripts call;
  ``skeleton`` is what every step shares (input sentinels verified, checks, own sentinel)
"""

__version__ = "0.1.0"
