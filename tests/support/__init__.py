"""Development and test tooling: the local Kafka launcher, `make run`, the fault harness.

Not part of the installed package (pyproject.toml ships `streams` only).
"""
