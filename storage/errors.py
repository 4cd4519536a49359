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


class PartyHeld(Conflict):
    """(country_code, party_id) pairs another platform holds: a pair belongs to one platform."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        super().__init__("already served by another platform: " + ", ".join(f"{c}*{p}" for c, p in pairs))


class SchemaTooNew(StorageError):
    """The database was migrated by a newer ocpi-hub than this one."""


class IntegrityError(StorageError):
    """A constraint refused a write (either backend's error, wrapped by the store)."""


class StorageFull(StorageError):
    """The database or its disk is full: the write was refused and nothing of it was kept.

    SQLite's SQLITE_FULL (the file system, or ``max_page_count``), PostgreSQL's disk_full (53100).
    The HTTP layer answers 503 with Retry-After; the store counts it for /status (``Store.full``).
    """


class StorageUnavailable(StorageError):
    """The database cannot be reached now: nothing of the write was committed or kept.

    PostgreSQL: a server restart or failover, a lost connection, a pool with no connection to
    give. SQLite: another program held the file's write lock past ``busy_timeout``. The HTTP
    layer answers 503 with Retry-After, as for ``StorageFull``.
    """


# The database is full or unreachable: callers answer 503 or skip a round, and log one line (the
# store logs the state itself; a traceback would say nothing more).
OUTAGES = (StorageFull, StorageUnavailable)


def is_storage_outage(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the ``OUTAGES``."""
    return isinstance(exc, OUTAGES)
