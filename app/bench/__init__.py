"""Benchmark of the API (not a test): `python -m app.bench` from the repository root."""
