"""The interop suite's own virtual environment: the third-party OCPI library and its pins.

The library pins pydantic 1 and an old FastAPI, which cannot live in the hub's environment, so
its peers run under a separate interpreter. The venv lives in ``.venv-interop/<hash>/`` at the
repository root, keyed by the hash of ``requirements.txt`` and the Python version: a second run
reuses it, a change of pins builds a new one. It is built in a scratch directory and renamed into
place only once complete, so an interrupted build is never mistaken for a good one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REQUIREMENTS = HERE / "requirements.txt"
CACHE = ROOT / ".venv-interop"
STAMP = ".complete"
# Bounds: pip gives up on an unreachable registry after a few short tries instead of hanging the
# run; the whole build has a hard ceiling.
PIP_NETWORK = ["--timeout", "15", "--retries", "2"]
BUILD_TIMEOUT = 300.0


class InteropEnvError(RuntimeError):
    """The interop venv could not be built (registry unreachable, pins not installable...)."""


def env_key() -> str:
    """Hash of the pins and the interpreter version: the venv directory's name."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:16]


def venv_python(directory: Path) -> Path:
    """The interpreter inside a venv directory."""
    return directory / "bin" / "python"


def ensure_interop_python() -> Path:
    """Return the interop venv's python, building the venv first if needed (bounded in time)."""
    target = CACHE / env_key()
    if (target / STAMP).exists() and venv_python(target).exists():
        return venv_python(target)
    CACHE.mkdir(exist_ok=True)
    scratch = CACHE / f"build-{os.getpid()}-{time.monotonic_ns()}"
    deadline = time.monotonic() + BUILD_TIMEOUT
    try:
        _run([sys.executable, "-m", "venv", str(scratch)], deadline, "creating the venv")
        _run(
            [
                str(venv_python(scratch)),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                *PIP_NETWORK,
                "-r",
                str(REQUIREMENTS),
            ],
            deadline,
            "installing tests/interop/requirements.txt",
        )
        (scratch / STAMP).write_text(REQUIREMENTS.read_text())
        try:
            scratch.rename(target)
        except OSError:
            # Another run finished the same venv first: use theirs.
            if not (target / STAMP).exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return venv_python(target)


def _run(argv: list[str], deadline: float, what: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise InteropEnvError(f"interop venv: no time left for {what}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=remaining, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InteropEnvError(
            f"interop venv: {what} took longer than {BUILD_TIMEOUT:.0f} s; is the package registry reachable?"
        ) from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InteropEnvError(
            f"interop venv: {what} failed (exit {done.returncode}). The interop suite needs the package "
            f"registry to install the third-party OCPI library (tests/interop/requirements.txt).\n{tail}"
        )


if __name__ == "__main__":  # `python -m tests.interop.venv`: build (or find) it and print its python
    print(ensure_interop_python())
