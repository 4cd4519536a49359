"""Benchmark harness for the OCPI hub (DESIGN.md section 13): ``python -m bench [--quick]``."""
