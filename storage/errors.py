"""Domain errors raised by storage; the HTTP layer maps them to OCPI answers."""

from __future__ import annotations


class StorageError(Exception):
    """Base of storage errors."""


class StoreClosedError(StorageError):
    """The store was used after close()."""


class RecordNotFound(StorageError):
    """The row asked for does not exist."""


class Conflict(StorageError):
    """The change would break a uniqueness rule (e.g. a party served by two platforms)."""


class SchemaTooNew(StorageError):
    """The database was migrated by a newer ocpi-hub than this one."""


class IntegrityError(StorageError):
    """A constraint refused a write (either backend's error, wrapped by the store)."""
