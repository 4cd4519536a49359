"""OCPI vocabulary every subsystem speaks: errors, envelopes, headers, paths, ids, models."""
