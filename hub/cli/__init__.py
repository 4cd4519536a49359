"""The ``ocpi-hub`` command: thin over the library and the admin API."""
