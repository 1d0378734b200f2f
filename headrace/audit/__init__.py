"""Checks of the pipeline as a whole: reconciliation, invariants, lag, warehouse metrics."""
