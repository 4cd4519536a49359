"""Roaming agreements: who may exchange which modules with whom (docs/DESIGN-NOTES.md)."""
