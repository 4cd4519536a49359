"""OCPI 2.3.0: models, credentials shape and translation to and from 2.2.1."""
