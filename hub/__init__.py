"""HTTP layer: app factory, middlewares, one file per OCPI module, admin API and CLI."""

__version__ = "0.1.0"
