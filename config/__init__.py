"""Hub settings: one frozen pydantic-settings object, built once and passed in.

Sources, highest priority first: keyword arguments (tests), environment variables with the
``HUB_`` prefix, the TOML file named by ``HUB_CONFIG``, then the defaults in code. Nested
sections use ``__`` in environment names (``HUB_DELIVERY__RELAY_WAIT=2``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["DeliverySettings", "RetentionSettings", "Settings", "SettingsError", "load_settings"]

_CI2 = re.compile(r"^[A-Za-z]{2}$")
_CI3 = re.compile(r"^[A-Za-z0-9]{3}$")
# The hub's own party codes: the pattern each must match and what to say when it does not.
_CODES: dict[str, tuple[re.Pattern[str], str]] = {
    "country_code": (_CI2, "must be two letters (OCPI CiString(2))"),
    "party_id": (_CI3, "must be three letters or digits (OCPI CiString(3))"),
}


class SettingsError(Exception):
    """Settings could not be built; the message is one line for the operator."""


class DeliverySettings(BaseModel):
    """How pushes reach their receivers (docs/DESIGN-NOTES.md, Delivery)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    relay_wait: float = Field(
        5.0, gt=0, description="Seconds the fast path waits for the receiver before answering 'queued'."
    )
    on_receiver_down: Literal["queue", "fail"] = Field(
        "queue", description="'queue' answers 1000 and retries later; 'fail' answers 4002/4003 like a plain hub."
    )
    max_attempts: int = Field(20, ge=1, description="Attempts before a message becomes a dead letter.")
    max_age: float = Field(86400.0, gt=0, description="Seconds before an undelivered message becomes a dead letter.")
    cdr_max_age: float = Field(7 * 86400.0, gt=0, description="max_age for CDRs (billing data gets days).")
    status_max_age: float = Field(600.0, gt=0, description="max_age for EVSE status PATCHes (stale fast).")
    initial_backoff: float = Field(1.0, gt=0, description="First retry delay in seconds.")
    max_backoff: float = Field(300.0, gt=0, description="Longest retry delay in seconds.")
    concurrency_per_receiver: int = Field(16, ge=1, description="Parallel deliveries to one receiver.")
    max_in_flight: int = Field(
        512,
        ge=1,
        description="Deliveries sending at once, all receivers together (a fan-out to 10,000 platforms"
        " keeps the rest in the outbox, not in memory).",
    )
    offline_after_failures: int = Field(5, ge=1, description="Consecutive failures before a platform is OFFLINE.")
    offline_after_seconds: float = Field(
        10.0,
        ge=0,
        description="...and the time those failures must span: a receiver that fails now and then (one sick"
        " server behind its load balancer) is retried, not announced OFFLINE to everyone and back every few"
        " seconds; 0: the failures alone decide.",
    )
    probe_max_backoff: float = Field(60.0, gt=0, description="Longest wait between probes of an OFFLINE platform.")
    silence_check: float = Field(
        300.0,
        ge=0,
        description="Seconds without traffic after which a CONNECTED platform's versions endpoint is checked"
        " (HubClientInfo still-alive check); 0 disables it.",
    )
    shutdown_grace: float = Field(5.0, ge=0, description="Seconds in-flight deliveries may finish on shutdown.")
    batch_size: int = Field(500, ge=1, description="Due messages the worker picks up per round.")
    max_queue_per_receiver: int = Field(
        1000,
        ge=1,
        description="Directed pushes waiting for or in a send slot per receiver; beyond it the hub answers"
        " HTTP 503 with Retry-After instead of letting latency climb.",
    )
    probe_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a probe of an OFFLINE platform or a still-alive check may take (capped by"
        " request_timeout); probes run beside the delivery scheduler, never in its loop.",
    )
    max_probes: int = Field(
        8, ge=1, description="Probes and still-alive checks in flight at once (the others wait for a later round)."
    )


class ClusterSettings(BaseModel):
    """Several hub processes on one PostgreSQL database (ignored on SQLite: one process)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat_interval: float = Field(
        5.0, gt=0, description="Seconds between a process's heartbeats (its /status row, its leases renewed)."
    )
    lease_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds a claimed message stays with its process without a heartbeat; then another"
        " process takes it over (longer than request_timeout).",
    )
    gone_after: float = Field(
        20.0, gt=0, description="Seconds without a heartbeat after which /status shows a process as gone."
    )


_DAY = 86400.0


class RetentionSettings(BaseModel):
    """How long stored copies, finished outbox messages and the audit log are kept (docs/OPERATIONS.md, Retention).

    Sessions, CDRs and tokens are kept for a time after their last update; locations and
    tariffs as long as their owner's platform is registered; dead, rejected and discarded
    messages for a time after they finished; audit entries for a time after they were written.
    0 keeps them forever.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sessions: float = Field(
        90 * _DAY,
        ge=0,
        description="Seconds a session is kept after its last update (90 days: its CDR and a billing dispute"
        " on it come well within that).",
    )
    cdrs: float = Field(
        400 * _DAY,
        ge=0,
        description="Seconds a CDR is kept after its last update (400 days: a yearly invoice reconciliation"
        " plus a dispute window).",
    )
    tokens: float = Field(
        400 * _DAY,
        ge=0,
        description="Seconds a token is kept after its last update (eMSPs re-push live tokens well within that).",
    )
    dead_letters: float = Field(
        30 * _DAY,
        ge=0,
        description="Seconds a message that will not be delivered (dead letter, rejected or discarded) is kept"
        " after it finished (30 days: time to read, re-drive or discard it; then it goes, dead letters too).",
    )
    audit_log: float = Field(
        365 * _DAY,
        ge=0,
        description="Seconds an audit-log entry is kept (365 days: a yearly review of who changed what).",
    )
    sweep_interval: float = Field(3600.0, gt=0, description="Seconds between retention sweeps.")
    batch_size: int = Field(500, ge=1, description="Rows one sweep step deletes (small, so pushes never wait long).")


class Settings(BaseSettings):
    """Every knob of the hub, with defaults that run it locally."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8900, ge=1, le=65535, description="Port to listen on.")
    base_url: str = Field(
        "",
        description="Public base URL used in every URL the hub publishes; defaults to http://HOST:PORT.",
    )
    database: str = Field(
        "var/hub.sqlite3",
        description="SQLite database file, or a postgresql:// URL to share one database between hub processes.",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token for /admin; when unset, `serve` creates one next to the database (0600).",
    )
    country_code: str = Field("NL", description="The hub's own OCPI country_code (CiString(2)).")
    party_id: str = Field("HUB", description="The hub's own OCPI party_id (CiString(3)).")
    name: str = Field("OCPI Hub", description="Business name published in the hub's credentials.")
    website: str | None = Field(None, description="Business website published in the hub's credentials.")
    token_a_ttl: float = Field(7 * 86400.0, gt=0, description="Seconds an invitation token A stays valid.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open a connection to a partner.")
    request_timeout: float = Field(15.0, gt=0, description="Seconds for a whole call to a partner.")
    command_timeout: float = Field(10.0, gt=0, description="Seconds a synchronous command/profile forward may take.")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    page_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Stored JSON one GET-all page carries at most (at least one object); the rest follows"
        " by its Link (a page of 1,000 large objects would hold the hub's memory and the reader's).",
    )
    max_requests_in_progress: int = Field(
        128,
        ge=1,
        description="OCPI requests the hub works on at once; beyond it, HTTP 503 with Retry-After at once"
        " (overload is answered quickly and honestly, not queued with latency climbing).",
    )
    rate_limit_per_second: float = Field(
        200.0, ge=0, description="Requests per second one platform may make (token bucket); 0 disables the limit."
    )
    rate_limit_burst: int = Field(400, ge=1, description="Requests one platform may make in a burst above the rate.")
    allow_private_urls: bool = Field(
        False,
        description="Let partner URLs point at loopback/private/link-local addresses (tests, local runs); "
        "False in production (SSRF guard, routing/peers/ssrf.py).",
    )
    status_public: bool = Field(False, description="Serve /status without the admin token.")
    status_queue_age_threshold: float = Field(
        300.0, gt=0, description="Seconds a queued message may wait before /status reports 'degraded'."
    )
    status_disk_free_min_mb: float = Field(
        256.0,
        ge=0,
        description="Free MB on the SQLite database's file system below which /status reports 'degraded' (0: never).",
    )
    metrics_public: bool = Field(False, description="Serve /metrics without the admin token or an operator login.")
    traffic_log_rows: int = Field(
        100_000,
        ge=0,
        description="Newest traffic-log rows kept in the database (0 keeps none; the log line is still written).",
    )
    console_session_ttl: float = Field(
        8 * 3600.0, gt=0, description="Seconds an operator console session lasts before a new login is needed."
    )
    trust_proxy: bool = Field(
        False,
        description="Behind a reverse proxy that sets them: take clients' addresses from the last"
        " X-Forwarded-For entry (admin login limit) and the scheme from X-Forwarded-Proto (Secure console"
        " cookies).",
    )
    admin_auth_max_failures: int = Field(
        10, ge=1, description="Failed admin logins from one address before it is refused (HTTP 429)."
    )
    admin_auth_block_seconds: float = Field(
        300.0, gt=0, description="Window in seconds for counting failed admin logins, and how long a block lasts."
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="Event loop of `serve`: uvloop (libuv, in C) where installed, else asyncio's own; 'auto'"
        " takes uvloop when it imports.",
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_json: bool = Field(True, description="One JSON object per log line.")
    max_requests_in_progress_per_platform: int | None = Field(
        None,
        ge=1,
        description="OCPI requests one platform may have in progress at once (unset: a quarter of"
        " max_requests_in_progress, at least 1); beyond it, HTTP 429 with Retry-After, so one partner's"
        " slow bodies or GETs to a silent receiver never take the whole hub.",
    )
    body_read_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a partner may take to send a request body; beyond it, HTTP 408 with"
        " Connection: close (the hub-wide in-progress bound does not count a body still arriving).",
    )
    agreements: Literal["open", "required"] = Field(
        "open",
        description="'open' routes between every pair of connected parties; 'required' only between two"
        " parties with an active roaming agreement covering the module (admin API /admin/agreements).",
    )
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    max_answer_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest answer read from a partner; the hub stops reading there and the caller gets"
        " OCPI 4000 (a queued push counts a failed attempt).",
    )

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Any:
        # A path object (tests, TOML tables built in code) is a file name like any other.
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("country_code", "party_id")
    @classmethod
    def _check_code(cls, value: str, info: ValidationInfo) -> str:
        pattern, rule = _CODES[info.field_name or ""]
        if not pattern.match(value):
            raise ValueError(rule)
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @property
    def public_url(self) -> str:
        """Base URL the hub publishes, without a trailing slash."""
        return self.base_url or f"http://{self.host}:{self.port}"

    @property
    def versions_url(self) -> str:
        """The versions endpoint partners are given out of band."""
        return f"{self.public_url}/ocpi/versions"

    @property
    def is_postgres(self) -> bool:
        """True when the database is a PostgreSQL server rather than a SQLite file."""
        return self.database.startswith(("postgresql://", "postgres://"))

    @property
    def database_path(self) -> Path:
        """The SQLite file (PostgreSQL has none: the commands that need one refuse it)."""
        if self.is_postgres:
            raise ValueError("this command works on a SQLite database file; HUB_DATABASE is a PostgreSQL URL")
        return Path(self.database)

    @property
    def admin_token_file(self) -> Path:
        """Where `serve` keeps a generated admin token: next to the database (PostgreSQL: var/)."""
        if self.is_postgres:
            return Path("var/postgres.admin-token")
        return self.database_path.with_name(self.database_path.name + ".admin-token")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the optional TOML file (HUB_CONFIG) below the environment."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("HUB_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning every problem into one readable SettingsError line."""
    toml_path = os.environ.get("HUB_CONFIG")
    if toml_path and not Path(toml_path).is_file():
        raise SettingsError(f"HUB_CONFIG points at {toml_path!r}, which is not a file")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from exc
    except ValueError as exc:  # e.g. a TOML syntax error
        raise SettingsError(f"invalid settings: {exc}") from exc
