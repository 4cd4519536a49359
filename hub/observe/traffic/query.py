"""Traffic-log search criteria: one parser of query parameters for the admin API and the console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hub.admin.params import positive_int
from routing.clock import iso, parse_iso
from routing.protocol.errors import InvalidParameters

KIND_CHOICES = ("partner", "admin", "other", "all")  # storage/traffic.py KINDS, and "all"


def _int_param(query: Mapping[str, str], name: str, default: int | None, *, high: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    number = positive_int(raw)
    if number is None or not 1 <= number <= high:
        raise InvalidParameters(f"'{name}' must be an integer from 1 to {high}")
    return number


def _time_param(query: Mapping[str, str], name: str) -> str | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return iso(parse_iso(raw[:64]))  # one stored format, so text comparison is time comparison
    except ValueError:
        raise InvalidParameters(f"'{name}' must be a date-time like 2026-11-25T10:00:00Z") from None


def _choice(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    raw = query.get(name)
    if not raw:
        return None
    if raw not in choices:
        raise InvalidParameters(f"'{name}' must be one of {', '.join(choices)}")
    return raw


def _flag(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "")
    if raw not in ("", "0", "1", "true", "false", "on"):
        raise InvalidParameters(f"'{name}' must be true or false")
    return raw in ("1", "true", "on")


@dataclass(frozen=True)
class TrafficSearch:
    """A traffic-log search, as the admin API, the console and the CLI take it (query parameters).

    ``kind``: partner (rows of a known platform), admin (the admin API's calls), other (unknown
    callers, scanners, favicons, probes) or all (None). ``before``/``after``: row ids for paging.
    """

    correlation_id: str | None = None
    request_id: str | None = None
    platform_id: int | None = None
    module: str | None = None
    http_status: int | None = None
    ocpi_status: int | None = None
    since: str | None = None
    until: str | None = None
    kind: str | None = None
    direction: str | None = None
    failed: bool = False
    before: int | None = None
    after: int | None = None
    limit: int = 100

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, default_kind: str = "all") -> TrafficSearch:
        """Parse query parameters; InvalidParameters names the first bad one."""
        kind = _choice(query, "kind", KIND_CHOICES) or default_kind
        return cls(
            correlation_id=query.get("correlation_id") or None,
            request_id=query.get("request_id") or None,
            platform_id=_int_param(query, "platform_id", None, high=2**62),
            module=query.get("module") or None,
            http_status=_int_param(query, "http_status", None, high=999),
            ocpi_status=_int_param(query, "ocpi_status", None, high=9999),
            since=_time_param(query, "since"),
            until=_time_param(query, "until"),
            kind=None if kind == "all" else kind,
            direction=_choice(query, "direction", ("in", "out")),
            failed=_flag(query, "failed"),
            before=_int_param(query, "before", None, high=2**62),
            after=_int_param(query, "after", None, high=2**62),
            limit=_int_param(query, "limit", 100, high=10_000) or 100,
        )
