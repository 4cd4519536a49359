"""Wire helpers shared by the interop tests: what a peer recorded, routing headers, message ids."""

from __future__ import annotations

from typing import Any

import pytest


def hub_bug(reason: str) -> pytest.MarkDecorator:
    """A known hub bug: strict xfail (an XPASS says the fix landed: remove the marker).

    Only an AssertionError counts as the expected failure: a peer that does not start, a timeout
    or a missing interop venv still fails the test.
    """
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"hub bug: {reason}")


def outbound(state: dict[str, Any], method: str, path_part: str) -> list[dict[str, Any]]:
    """Outbound exchanges a peer made with this method and URL part."""
    return [o for o in state["outbound"] if o["method"] == method and path_part in o["url"]]


def routing(headers: dict[str, str]) -> tuple[str, str, str, str]:
    """FROM and TO, upper-cased: they are CiString (types.asciidoc), the library lowercases them."""
    return (
        headers.get("ocpi-from-country-code", "").upper(),
        headers.get("ocpi-from-party-id", "").upper(),
        headers.get("ocpi-to-country-code", "").upper(),
        headers.get("ocpi-to-party-id", "").upper(),
    )


def assert_ids(request: dict[str, Any], answer_headers: dict[str, str]) -> None:
    """transport_and_format 4.1.1 (Unique message IDs): a fresh X-Request-ID, the same X-Correlation-ID."""
    headers = request["headers"]
    assert headers.get("x-request-id")
    assert headers["x-request-id"] != answer_headers.get("x-request-id")
    assert headers.get("x-correlation-id") == answer_headers.get("x-correlation-id")
