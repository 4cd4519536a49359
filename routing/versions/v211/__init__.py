"""OCPI 2.1.1: models, credentials shape and translation to and from 2.2.1."""
