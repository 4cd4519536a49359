"""`serve`'s event loop choice (HUB_EVENT_LOOP): uvloop by default where it imports, asyncio on request."""

from __future__ import annotations

import asyncio
import sys

import pytest

from hub.cli.common import CliError
from hub.cli.local import run_loop

uvloop = pytest.importorskip("uvloop")


def _loop_type(choice: str) -> type:
    seen: list[type] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()))

    run_loop(main(), choice)
    return seen[0]


def test_auto_and_uvloop_run_on_uvloop() -> None:
    assert _loop_type("auto") is uvloop.Loop
    assert _loop_type("uvloop") is uvloop.Loop


def test_asyncio_runs_on_the_standard_loop() -> None:
    assert not issubclass(_loop_type("asyncio"), uvloop.Loop)


def test_uvloop_asked_for_but_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert not issubclass(_loop_type("auto"), uvloop.Loop)  # auto falls back quietly

    async def main() -> None:
        raise AssertionError("must not run")

    coroutine = main()
    with pytest.raises(CliError, match="uvloop is not installed"):
        run_loop(coroutine, "uvloop")
    coroutine.close()
