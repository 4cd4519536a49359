"""One file per OCPI module: thin handlers and their route tables."""
