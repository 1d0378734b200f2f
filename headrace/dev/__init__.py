"""Development tooling, not runtime: local infrastructure, pipeline and sample data."""
