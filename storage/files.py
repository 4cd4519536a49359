"""The database's files on disk: one hub per database (lock), mode 0600, creation, backup and restore.

The database holds the tokens the hub presents to its partners, so every file it consists of
(the database, its ``-wal`` and ``-shm``, the lock file, backups) is created readable by its
owner only. SQLite creates ``-wal`` and ``-shm`` with the mode of the database file, so creating
the database 0600 ourselves, before SQLite does, covers all three.

Only one hub may serve a database: two would run two delivery workers over one outbox. The
lock is ``flock`` on ``<database>.lock``, held for the life of the store; the kernel releases
it when the process dies (also on ``kill -9``), so a crashed hub never leaves a stale lock.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.errors import StorageError

LOGGER = logging.getLogger(__name__)

PRIVATE = 0o600
SIDE_FILES = ("-wal", "-shm")


class DatabaseLocked(StorageError):
    """Another process (a running hub, a restore) holds the database's lock."""


class DatabaseMissing(StorageError):
    """The database file does not exist and nobody asked to create it."""


class BackupTargetExists(StorageError):
    """A backup would overwrite an existing file (never done: it may be an earlier backup)."""


def lock_path(database: Path) -> Path:
    """The lock file next to the database."""
    return database.with_name(database.name + ".lock")


def _create_private(path: Path) -> bool:
    """Create an empty file readable by its owner only; False when it already existed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def tighten(database: Path) -> None:
    """Make the database and its WAL/SHM files 0600 (older hubs created them 0644)."""
    for path in (database, *(Path(str(database) + s) for s in SIDE_FILES)):
        try:
            if path.stat().st_mode & 0o077:
                os.chmod(path, PRIVATE)
        except FileNotFoundError:
            continue


def create_database(database: Path, *, make_dirs: bool = True) -> bool:
    """Create the database file (0600, incremental auto-vacuum) if missing; True when created now.

    A created database is worth a WARNING: a typo in the path would otherwise start an empty
    hub with a new admin token, and every partner would get 401.
    """
    if database.exists():
        tighten(database)
        return False
    if make_dirs:
        database.parent.mkdir(parents=True, exist_ok=True)
    if not _create_private(database):
        return False
    # auto_vacuum can only be chosen before the first table exists (or with a VACUUM later):
    # the retention sweep gives freed pages back to the file system with incremental_vacuum.
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")
    finally:
        conn.close()
    LOGGER.warning("created a new, empty database at %s", database.resolve())
    return True


def require_database(database: Path) -> None:
    """Refuse a database that does not exist (serve without --init)."""
    if not database.exists():
        raise DatabaseMissing(
            f"database {database.resolve()} does not exist; create it with `ocpi-hub migrate`"
            " (or start with `ocpi-hub serve --init`), or fix HUB_DATABASE"
        )


@dataclass
class DatabaseLock:
    """An exclusive lock on one database, held until release()."""

    path: Path
    fd: int | None

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases the flock); harmless twice."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def acquire_lock(database: Path, *, purpose: str = "hub") -> DatabaseLock:
    """Take the database's exclusive lock or raise DatabaseLocked naming the holder."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DatabaseLocked(
                f"database {database.resolve()} is in use by {holder} (lock {path.resolve()}); one hub per database"
            ) from exc
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{purpose} pid {os.getpid()}".encode(), 0)
    return DatabaseLock(path, fd)


def backup(database: Path, target: Path) -> int:
    """Copy a (possibly live) database to ``target`` with SQLite's online backup API; return its size.

    The backup API copies a consistent snapshot even while the hub writes (it restarts when the
    source changes under it); the copy is a single self-contained file (journal mode DELETE).
    """
    if not database.exists():
        raise DatabaseMissing(f"database {database.resolve()} does not exist")
    if target.exists():
        raise BackupTargetExists(f"{target.resolve()} already exists; back up to a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    _create_private(target)
    dest = sqlite3.connect(target)
    try:
        _copy_into(database, dest, "DELETE")
        check = dest.execute("PRAGMA quick_check").fetchone()[0]
    except BaseException:
        dest.close()
        target.unlink(missing_ok=True)
        raise
    dest.close()
    if check != "ok":
        target.unlink(missing_ok=True)
        raise sqlite3.DatabaseError(f"the backup failed its integrity check: {check}")
    return target.stat().st_size


def _copy_into(source: Path, dest: sqlite3.Connection, journal_mode: str) -> None:
    """Copy the database ``source`` (opened read-only) into ``dest`` page by page, then set its journal mode."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        src.backup(dest)
    finally:
        src.close()
    dest.execute(f"PRAGMA journal_mode={journal_mode}")


def check_backup(path: Path) -> None:
    """Refuse a file that is not a sound hub database."""
    if not path.is_file():
        raise DatabaseMissing(f"backup {path.resolve()} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        known = conn.execute("SELECT count(*) FROM sqlite_master WHERE name='_sqlite_migrations'").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise sqlite3.DatabaseError(f"{path.resolve()} is not an SQLite database: {exc}") from exc
    finally:
        conn.close()
    if check != "ok":
        raise sqlite3.DatabaseError(f"{path.resolve()} fails the integrity check: {check}")
    if not known:
        raise sqlite3.DatabaseError(f"{path.resolve()} is not an ocpi-hub database (no migrations table)")


def restore(source: Path, database: Path) -> None:
    """Replace the database's content with a backup's (the caller holds the database lock)."""
    create_database(database)
    dest = sqlite3.connect(database)
    try:
        # The hub runs in WAL mode; keep the restored file in it (a backup is in DELETE mode).
        _copy_into(source, dest, "WAL")
    finally:
        dest.close()
    tighten(database)
