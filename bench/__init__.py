"""Benchmark harness for the OCPI hub (docs/DESIGN-NOTES.md, Benchmark): ``python -m bench [--quick]``."""
