"""Physics of the simulated experiment, NumPy only: probe, objects, scan, forward model, simulation of a dose."""
