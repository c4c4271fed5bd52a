"""Which patterns a method sees: overlap views (nested subsets of the scan, persisted groups) and their measured
overlap."""
