"""Scoring against the ground truth and the study tables: metrics, aggregation, statistics, highlights."""
