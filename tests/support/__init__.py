"""Shared test helpers: fake partners, the hub as a process or thread, waiting, backends, per-area helpers.

Fixtures stay in tests/conftest.py (pytest finds them there); everything a test imports lives here.
"""
