"""Traffic records: redaction, classification, and building each record and its log line.

The recorder (hub/observe/traffic/recorder.py) captures the few values of an exchange on the event loop; the
functions here turn them into a redacted ``TrafficRecord`` and its structured log line later, in
a batch on a worker thread. Never logged: Authorization headers, bodies, query values other than
paging and token type, token uids in paths (tokens module, authorize URLs).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from hub.observe.logs import lines_together
from hub.ocpi.routed import DRAFT_ALIASES
from routing.decide import MODULES
from routing.peers.exchange import Exchange
from routing.protocol.vocab import ModuleID
from storage.traffic import TrafficRecord

LOGGER = logging.getLogger("hub.observe.traffic.recorder")

REDACTED = "{redacted}"
_SAFE_QUERY = frozenset({"type", "offset", "limit", "date_from", "date_to"})
HUB_MODULES = frozenset(MODULES) | {ModuleID.CREDENTIALS, ModuleID.HUB_CLIENT_INFO, "versions"}
_ALIASES = {**DRAFT_ALIASES, "registrations": ModuleID.CREDENTIALS}
_OPS_PATHS = {"admin", "status", "health", "metrics", "console"}
UNLOGGED = frozenset({"metrics", "health", "status", "console"})  # polling noise: counted, not logged


# ---- redaction and classification ----------------------------------------------------------


def _redact_token_tail(tail: list[str]) -> list[str]:
    # tokens RECEIVER: {country_code}/{party_id}/{uid}; tokens SENDER: {uid}/authorize (OCPI 2.2.1 mod_tokens).
    if len(tail) >= 2 and tail[-1].lower() == "authorize":
        return [REDACTED] * (len(tail) - 1) + [tail[-1]]
    if len(tail) == 3:
        return [tail[0], tail[1], REDACTED]
    return [REDACTED] * len(tail)


def redact_path(path: str, *, module: str | None = None, base_path: str | None = None) -> str:
    """The path with token uids replaced by ``{redacted}``.

    ``base_path`` is the endpoint's own path when known (calls out): everything after it is
    the module-specific tail. Without it the tail starts after a ``tokens`` segment (and its
    ``sender``/``receiver``); a tokens path of unknown shape is redacted whole.
    """
    segments = path.split("/")
    if base_path is not None and module == ModuleID.TOKENS:
        start = len(base_path.rstrip("/").split("/"))
    else:
        lowered = [s.lower() for s in segments]
        if "tokens" not in lowered:
            if module == ModuleID.TOKENS:
                return "/" + REDACTED
            return path
        start = len(lowered) - 1 - lowered[::-1].index("tokens") + 1
        if start < len(segments) and lowered[start] in ("sender", "receiver"):
            start += 1
    head, tail = segments[:start], segments[start:]
    trailing = bool(tail) and tail[-1] == ""
    tail = [s for s in tail if s]
    redacted = _redact_token_tail(tail)
    return "/".join([*head, *redacted]) + ("/" if trailing else "")


def safe_query(items: Iterable[tuple[str, str]]) -> str:
    """Only paging and token-type query parameters survive ('?...' or '')."""
    kept = [(k, v) for k, v in items if k in _SAFE_QUERY]
    return "?" + urlencode(kept) if kept else ""


def module_of(path: str) -> str:
    """The module a hub path belongs to (a bounded set of names: safe as a metric label)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "unknown"
    if parts[0] in _OPS_PATHS:
        return parts[0]
    if parts[0] != "ocpi" or len(parts) == 1:
        return "unknown"
    if parts[1] == "versions":
        return "versions"
    if parts[1] in _ALIASES:
        return _ALIASES[parts[1]]
    if parts[1] == "2.2.1":
        if len(parts) == 2:
            return "versions"
        if parts[2] in HUB_MODULES:
            return parts[2]
        if parts[2] in ("callbacks", "proxy"):
            return parts[2]
    return "unknown"


def _party(lowered: Mapping[str, str], side: str) -> str | None:
    """``side``'s OCPI routing headers as CC*PID, from headers with lowered names."""
    country_code, party_id = lowered.get(f"ocpi-{side}-country-code"), lowered.get(f"ocpi-{side}-party-id")
    return f"{country_code}*{party_id}" if country_code and party_id else None


_STATUS_CODE = re.compile(rb'"status_code"\s*:\s*(-?\d{1,9})')


def ocpi_status_of(response: web.StreamResponse) -> int | None:
    """The envelope's status_code of a hub answer (None when it is not an OCPI envelope)."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    body = response.body
    if not body.startswith(b"{") or len(body) > 1_000_000:
        return None
    # A search instead of a parse per answer; a body where the key occurs more than once (inside
    # data) is parsed to find the envelope's own.
    found = _STATUS_CODE.findall(body)
    if len(found) == 1:
        return int(found[0])
    if not found:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    code = parsed.get("status_code") if isinstance(parsed, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def delivered(exchange: Exchange) -> bool:
    """A call counts as delivered when the receiver gave an OCPI answer that is not a 'try again'."""
    status = exchange.status
    return status is not None and exchange.is_ocpi and status < 500 and status not in (408, 429)


def same(record: TrafficRecord) -> TrafficRecord:
    """A record that was built already (``add``)."""
    return record


def pair(country_code: str | None, party_id: str | None) -> str | None:
    """'CC*PID' from a routing header pair, None unless both are there."""
    return f"{country_code}*{party_id}" if country_code and party_id else None


def inbound_record(
    now: str,
    module: str,
    method: str,
    path: str,
    query_string: str,
    platform_id: int | None,
    from_party: str | None,
    to_party: str | None,
    http_status: int,
    ocpi_status: int | None,
    request_id: str | None,
    correlation_id: str | None,
    latency_ms: float,
    losses: str | None = None,
) -> TrafficRecord:
    """The redacted record of one request to the hub (``losses``: its translation Loss records, JSON)."""
    return TrafficRecord(
        ts=now,
        direction="in",
        module=module,
        method=method,
        path=redact_path(path, module=module) + safe_query(query_items(query_string)),
        platform_id=platform_id,
        from_party=from_party,
        to_party=to_party,
        http_status=http_status,
        ocpi_status=ocpi_status,
        attempt=None,
        request_id=request_id,
        correlation_id=correlation_id,
        latency_ms=latency_ms,
        losses=losses,
    )


def outbound_record(
    now: str, exchange: Exchange, platform_id: int | None, module: str, base_path: str | None, attempt: int
) -> TrafficRecord:
    """The redacted record of one call to a platform."""
    parts = urlsplit(exchange.url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    path = redact_path(parts.path, module=module, base_path=base_path)
    lowered = {k.lower(): v for k, v in exchange.headers.items()}  # once: four headers are read
    return TrafficRecord(
        ts=now,
        direction="out",
        module=module,
        method=exchange.method,
        path=f"{parts.scheme}://{host}{path}{safe_query(query_items(parts.query))}",
        platform_id=platform_id,
        from_party=_party(lowered, "from"),
        to_party=_party(lowered, "to"),
        http_status=exchange.status,
        ocpi_status=exchange.ocpi_status,
        attempt=attempt,
        request_id=lowered.get("x-request-id"),
        correlation_id=lowered.get("x-correlation-id"),
        latency_ms=round(exchange.latency * 1000, 3),
        error=exchange.error,
        note=exchange.note,
    )


def render(batch: list[Callable[[], TrafficRecord]]) -> list[TrafficRecord]:
    """On a worker thread: build each redacted record and write its log line."""
    records = [build() for build in batch]
    if not LOGGER.isEnabledFor(logging.INFO):  # the table still gets them; nothing formatted for a line not written
        return records
    with lines_together():  # the batch's lines in one write, not a write and a flush per line
        for record in records:
            _log_line(record)
    return records


def _log_line(record: TrafficRecord) -> None:
    LOGGER.info(
        "%s %s %s %s %s -> %s: HTTP %s OCPI %s attempt %s (%.1f ms) X-Request-ID %s X-Correlation-ID %s%s",
        record.direction,
        record.module,
        record.method,
        record.path,
        record.from_party or "-",
        record.to_party or "-",
        record.http_status if record.http_status is not None else record.error,
        record.ocpi_status if record.ocpi_status is not None else "-",
        record.attempt if record.attempt is not None else "-",
        record.latency_ms,
        record.request_id,
        record.correlation_id,
        f" ({record.note})" if record.note else "",
        extra={"traffic": dict(vars(record))},  # shallow: the fields are plain values
    )


def query_items(query: str) -> list[tuple[str, str]]:
    """Decoded query pairs, blanks kept."""
    return parse_qsl(query, keep_blank_values=True)


# ---- HTTP: middleware, admin query, lifecycle ------------------------------------------------
