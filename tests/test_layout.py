"""The layout shows the architecture (issue 24): a push crosses the subsystem folders in order.

Pushes are traced with ``sys.setprofile``: every call from project code into project code is
recorded as (caller folder, callee folder). The subsystems form one pipeline, HTTP -> routing
-> agreements -> delivery -> peers -> versions -> registry -> storage, and a call may only go
down it: a folder never calls back into one that comes before it (the issue's "no return to a
folder already left, except the answer coming back", which is a return, not a call). Two kinds
of folder sit beside the pipeline: the vocabulary every layer speaks (OCPI errors, envelopes and
headers in routing/protocol/, the message values in routing/messages.py, the clock, task helpers, settings,
the app keys), and the observers (hub/observe/: traffic log and metrics), which anyone may
notify and which call nothing but each other and the vocabulary. Checked on the real app with
real receivers on 127.0.0.1, for a directed push, a broadcast and a GET through the hub.

The README's layout table is checked against the tree too.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from tests.support.routing import CPO1, EMSP1, example, network, rh, session_for
from tests.support.waiting import settle

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("hub", "routing", "storage", "config")

PIPELINE = [
    "hub/ocpi",
    "routing",
    "routing/agreements",
    "routing/delivery",
    "routing/peers",
    "routing/versions",
    "routing/registry",
    "storage",
]
VOCABULARY_FOLDERS = {"routing/protocol", "config", "hub"}  # hub/: app keys and wiring only
VOCABULARY_FILES = {"routing/messages.py", "routing/clock.py", "routing/tasks.py"}
OBSERVERS = {"hub/observe", "hub/observe/traffic"}

Pair = tuple[str, str]


def place_of(filename: str) -> str | None:
    """'vocabulary', or the project folder a source file lives in; None outside the project."""
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if rel.parts[0] not in PROJECT:
        return None
    folder = "/".join(rel.parts[:-1])
    if folder in VOCABULARY_FOLDERS or rel.as_posix() in VOCABULARY_FILES or folder.startswith("routing/protocol"):
        return "vocabulary"
    if folder.startswith("routing/versions"):
        return "routing/versions"  # one subsystem, with a package per version
    return folder


def tracer(calls: dict[Pair, str]) -> Callable[[FrameType, str, Any], None]:
    """A profile function recording (caller place, callee place) for project-to-project calls."""
    places: dict[str, str | None] = {}

    def where(frame: FrameType) -> str | None:
        name = frame.f_code.co_filename
        if name not in places:
            places[name] = place_of(name)
        return places[name]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":  # a coroutine resuming is a 'call' too: its f_back is who awaits it
            return
        callee = where(frame)
        if callee is None:
            return
        back = frame.f_back
        while back is not None and where(back) is None:  # through aiohttp, asyncio, the library
            back = back.f_back
        caller = where(back) if back is not None else None
        if caller is not None and caller != callee and (caller, callee) not in calls:
            calls[(caller, callee)] = f"{back.f_code.co_qualname} -> {frame.f_code.co_qualname}"  # type: ignore[union-attr]

    return profile


def upstream_calls(calls: dict[Pair, str]) -> list[str]:
    """The calls that go against the pipeline, with the functions that made them."""
    wrong = []
    for (caller, callee), how in sorted(calls.items()):
        if callee == "vocabulary" or callee in OBSERVERS:
            continue  # anyone may speak the vocabulary and notify an observer
        if caller in OBSERVERS or caller == "vocabulary":
            wrong.append(f"{caller} calls {callee}: {how}")
        elif caller not in PIPELINE or callee not in PIPELINE:
            wrong.append(f"{caller} -> {callee} is not in the pipeline: {how}")
        elif PIPELINE.index(caller) > PIPELINE.index(callee):
            wrong.append(f"{caller} calls back into {callee}: {how}")
    return wrong


async def traced(make_call: Callable[[], Any]) -> tuple[Any, dict[Pair, str]]:
    """Run one call to the hub with the tracer on; the answer and the calls seen."""
    calls: dict[Pair, str] = {}
    sys.setprofile(tracer(calls))
    try:
        answer = await make_call()
    finally:
        sys.setprofile(None)
    return answer, calls


async def test_a_directed_push_goes_down_the_pipeline_only(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    # The registrations' ClientInfo pushes run after their answers: done before the trace starts,
    # so what is traced is this request's path only.
    await settle(hub)
    (status, answer, _), calls = await traced(
        lambda: net.call(
            "PUT",
            "/ocpi/2.2.1/sessions/receiver/BE/BEC/101",
            net.cpo1,
            json=session_for(CPO1, EMSP1),
            headers=rh(CPO1, EMSP1),
        )
    )
    assert status == 200 and answer["status_code"] == 1000
    assert ("routing/delivery", "routing/peers") in calls  # the push was delivered while traced
    assert ("hub/ocpi", "routing") in calls
    assert upstream_calls(calls) == []


async def test_a_broadcast_and_a_get_go_down_the_pipeline_only(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    await settle(hub)  # the registrations' ClientInfo pushes are not this trace's
    location = example("location_example.json")
    (status, answer, _), pushed = await traced(
        lambda: net.call("PUT", "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1", net.cpo1, json=location)
    )
    assert status == 200 and answer["status_code"] == 1000
    (status, answer, _), read = await traced(lambda: net.call("GET", "/ocpi/2.2.1/locations/sender", net.emsp1))
    assert status == 200 and answer["status_code"] == 1000
    assert upstream_calls(pushed) == []
    assert upstream_calls(read) == []


def test_the_readme_layout_table_matches_the_tree() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| folder | what lives there |") :].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `([\w/]+)/` \|", table, re.M))
    packages = {
        p.parent.relative_to(ROOT).as_posix()
        for top in PROJECT
        for p in (ROOT / top).glob("*/__init__.py")
        if not p.parent.name.startswith(("v2", "_"))  # routing/versions/v211, v221, v230
    }
    assert packages - listed == set(), "packages missing from the README's layout table"
    assert {f for f in listed if f.split("/")[0] in PROJECT and not (ROOT / f).is_dir()} == set()
    assert set(PROJECT) <= listed
