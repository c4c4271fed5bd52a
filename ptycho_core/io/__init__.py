"""Files: deterministic atomic NPZ, the data contracts (diffraction sets, ground truth, view index, reconstruction),
sentinels with provenance."""
