"""Rejected events: selecting them from the error zone and reprocessing them."""
