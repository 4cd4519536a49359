"""Seed a hub database directly in SQLite, before the hub starts (never while it runs).

Registering 1,000 platforms through the real handshake or pushing 100,000 locations through
the API would measure the set-up, not the scenario. The rows written here follow
storage/migrations/ (0001_initial, 0002_routing) and what storage/objects.py and
storage/platforms.py write: object bodies as compact JSON text, ``last_updated`` as the
canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` string, inbound tokens only as SHA-256 hashes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.peers import MODULES
from storage import objects as object_sql
from storage.migrate_sqlite import apply_migrations

EXAMPLES = Path("/work/shared/ocpi/examples-2.2.1")

# Used when the official examples are not on this machine (same shape, fewer fields).
_FALLBACK_LOCATION: dict[str, Any] = {
    "country_code": "BE",
    "party_id": "BEC",
    "id": "LOC1",
    "publish": True,
    "address": "F.Rooseveltlaan 3A",
    "city": "Gent",
    "country": "BEL",
    "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
    "evses": [
        {
            "uid": "3256",
            "evse_id": "BE*BEC*E041503001",
            "status": "AVAILABLE",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "CABLE",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 220,
                    "max_amperage": 16,
                    "last_updated": "2015-03-16T10:10:02Z",
                }
            ],
            "last_updated": "2015-06-28T08:12:01Z",
        }
    ],
    "time_zone": "Europe/Brussels",
    "last_updated": "2015-06-28T08:12:01Z",
}
_FALLBACK_SESSION: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "STK",
    "id": "101",
    "start_date_time": "2020-03-09T10:17:09Z",
    "kwh": 0.0,
    "cdr_token": {"uid": "123abc", "type": "RFID", "contract_id": "NL-TST-C12345678-S"},
    "auth_method": "WHITELIST",
    "location_id": "LOC1",
    "evse_uid": "3256",
    "connector_id": "1",
    "currency": "EUR",
    "status": "PENDING",
    "last_updated": "2020-03-09T10:17:09Z",
}


def example(name: str, fallback: dict[str, Any]) -> dict[str, Any]:
    """An official example payload, or the built-in stand-in."""
    try:
        data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
        return data
    except (OSError, ValueError):
        return copy.deepcopy(fallback)


def location_example() -> dict[str, Any]:
    return example("location_example.json", _FALLBACK_LOCATION)


def session_example() -> dict[str, Any]:
    return example("session_example_1_simple_start.json", _FALLBACK_SESSION)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def seed_locations(db: Path, count: int, *, country_code: str, party_id: str, receiver_base: str) -> None:
    """Apply migrations, then insert a CONNECTED CPO platform and ``count`` locations it owns into ``objects``."""
    apply_migrations(db)
    template = location_example()
    template.update(country_code=country_code, party_id=party_id)
    start = datetime(2025, 1, 1, tzinfo=UTC)

    def rows() -> Any:
        for i in range(count):
            loc_id = f"LOC{i:06d}"
            stamp = iso(start + timedelta(seconds=i))
            template["id"] = loc_id
            template["last_updated"] = stamp
            body = json.dumps(template, separators=(",", ":"), ensure_ascii=False)
            key = f"{country_code}/{party_id}/{loc_id}".upper()
            yield ("locations", key, "", country_code, party_id, loc_id.upper(), stamp, body)

    conn = sqlite3.connect(db)
    try:
        with conn:
            _seed_platform(conn, f"Seeded CPO {party_id}", country_code, party_id, "CPO", "bench-cpo", receiver_base)
            object_sql.insert_many(conn, rows())
    finally:
        conn.close()


def _seed_platform(
    conn: sqlite3.Connection, name: str, country_code: str, party_id: str, role: str, token: str, receiver_base: str
) -> None:
    """One CONNECTED platform with every endpoint at ``receiver_base``, one party and a token C (hashed)."""
    now = iso(datetime.now(UTC))
    cur = conn.execute(
        "INSERT INTO platforms (name, status, versions_url, version, token_out, send_base64,"
        " initiated_by, created_at, updated_at) VALUES (?, 'CONNECTED', ?, '2.2.1', ?, 1, 'party', ?, ?)",
        (name, f"{receiver_base}/ocpi/versions", f"out-{token}", now, now),
    )
    platform_id = cur.lastrowid
    conn.executemany(
        "INSERT INTO endpoints (platform_id, module, role, url) VALUES (?, ?, ?, ?)",
        [
            (platform_id, module, r, f"{receiver_base}/ocpi/2.2.1/{module}/{r.lower()}")
            for module in MODULES
            for r in ("SENDER", "RECEIVER")
        ]
        + [(platform_id, "credentials", "RECEIVER", f"{receiver_base}/ocpi/2.2.1/credentials")],
    )
    conn.execute(
        "INSERT INTO parties (platform_id, country_code, party_id, role, business_details, last_updated)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (platform_id, country_code, party_id, role, json.dumps({"name": name}), now),
    )
    conn.execute(
        "INSERT INTO tokens (token_hash, platform_id, kind, created_at) VALUES (?, ?, 'C', ?)",
        (hashlib.sha256(token.encode()).hexdigest(), platform_id, now),
    )


def seeded_party(i: int) -> tuple[str, str, str]:
    """(country_code, party_id, token C) of seeded eMSP ``i``: DE/000..DE/999, then XA/000.. (3-character party ids)."""
    country_code = "DE" if i < 1000 else "X" + chr(64 + i // 1000)
    return country_code, f"{i % 1000:03d}", f"bench-seeded-{i:05d}" if i >= 10_000 else f"bench-seeded-{i:04d}"


def seed_platforms(db: Path, count: int, *, receiver_base: str) -> list[tuple[str, str, str]]:
    """Insert ``count`` CONNECTED eMSP platforms (DE/000...), each with every endpoint at ``receiver_base``.

    Returns (country_code, party_id, token C) per platform; the hub only stores the token hashes.
    """
    apply_migrations(db)
    seeded: list[tuple[str, str, str]] = []
    conn = sqlite3.connect(db)
    try:
        with conn:
            for i in range(count):
                country_code, party_id, token = seeded_party(i)
                _seed_platform(conn, f"Seeded eMSP {i}", country_code, party_id, "EMSP", token, receiver_base)
                seeded.append((country_code, party_id, token))
    finally:
        conn.close()
    return seeded


def outbox_pending(db: Path, platform_id: int) -> int:
    """Pending outbox rows for one receiver, read from the running hub's WAL database."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT count(*) FROM outbox WHERE receiver_platform_id=? AND state='pending'", (platform_id,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()
