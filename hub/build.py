"""What build this is: package version, schema version (the newest migration) and git commit.

``ocpi-hub --version``, the serve banner and ``/status`` print it, so two installations of the
same package version (a checkout on another commit, a database schema ahead of the code) can be
told apart. The commit is read from the checkout the code runs from, or from ``HUB_BUILD_COMMIT``
(set it when building an image without ``.git``); "unknown" otherwise.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from hub import __version__
from storage.migrations import STEPS

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def commit() -> str:
    """The git commit of the running code (short hash, "+dirty" when the tree has changes), or "unknown"."""
    baked = os.environ.get("HUB_BUILD_COMMIT", "").strip()
    if baked:
        return baked
    if not (ROOT / ".git").exists():
        return "unknown"
    try:  # bounded: a broken git must not hang --version or a start
        done = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty=+dirty", "--abbrev=10", "--exclude=*"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def schema() -> str:
    """The schema version this code migrates to: the name of its newest migration."""
    return STEPS[-1].name


def describe() -> str:
    """One line: ``0.1.0 (schema 0014_console_sessions, commit 4928c02a1b)``."""
    return f"{__version__} (schema {schema()}, commit {commit()})"
