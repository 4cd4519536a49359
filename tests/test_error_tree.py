"""The error tree drawn in routing/protocol/errors.py's docstring is the tree of classes (issue 24, drift).

Every OcpiError subclass anywhere in routing/ and hub/ must be drawn there, under its real parent
and with its status code: the drawing is the one map of the hub's errors, and a class defined
elsewhere (or drawn wrong) fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import hub
import routing
from routing.protocol import errors
from routing.protocol.errors import OcpiError

# "    |   +-- InvalidParameters  2001   invalid or missing..." -> (depth, name, code)
_LINE = re.compile(r"^(?P<indent>[ |]*)\+-- (?P<name>\w+)\s+(?P<code>\d{4})\b")


def _drawn() -> dict[str, tuple[str, int]]:
    """name -> (parent name, status code) as the docstring draws them."""
    assert errors.__doc__ is not None
    drawn: dict[str, tuple[str, int]] = {}
    stack = ["OcpiError"]  # stack[d] is the node at depth d
    for line in errors.__doc__.splitlines():
        found = _LINE.match(line)
        if found is None:
            continue
        depth = (len(found["indent"]) - 4) // 4 + 1  # the root's children sit at indent 4
        del stack[depth:]
        drawn[found["name"]] = (stack[depth - 1], int(found["code"]))
        stack.append(found["name"])
    return drawn


def _classes() -> dict[str, tuple[str, int]]:
    """name -> (parent name, status code) of every OcpiError subclass the hub defines."""
    for package in (routing, hub):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    found: dict[str, tuple[str, int]] = {}
    todo = [OcpiError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith(("routing.", "hub.")):
                found[sub.__name__] = (cls.__name__, sub.status_code)
                todo.append(sub)
    return found


def test_the_drawn_error_tree_is_the_class_tree() -> None:
    assert _drawn() == _classes()


def test_every_error_class_lives_in_routing_errors() -> None:
    # One error tree: a module may re-export an error, never define its own.
    _classes()  # imports every module, so every subclass exists
    todo, outside = [OcpiError], []
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(("routing.", "hub.")) and cls.__module__ != "routing.protocol.errors":
            outside.append(f"{cls.__module__}.{cls.__name__}")
    assert outside == []
