"""HTTP layer: the app factory; ocpi/ (what partners call), admin/, observe/, cli/, console/."""

__version__ = "0.1.0"
