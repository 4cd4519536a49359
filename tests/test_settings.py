"""Settings: defaults, HUB_* environment, TOML file, nested sections, one-line errors (docs/DESIGN-NOTES.md, Layout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import DeliverySettings, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "hub.example.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def test_defaults():
    s = load_settings()
    assert (s.host, s.port, s.base_url) == ("127.0.0.1", 8900, "")
    assert s.public_url == "http://127.0.0.1:8900"
    assert s.versions_url == "http://127.0.0.1:8900/ocpi/versions"
    assert s.database == "var/hub.sqlite3" and s.database_path == Path("var/hub.sqlite3")
    assert s.admin_token_file == Path("var/hub.sqlite3.admin-token")
    assert s.admin_token is None
    assert (s.country_code, s.party_id, s.name, s.website) == ("NL", "HUB", "OCPI Hub", None)
    assert s.token_a_ttl == 7 * 86400
    assert (s.connect_timeout, s.request_timeout, s.command_timeout) == (5.0, 15.0, 10.0)
    assert s.max_body_bytes == 4 * 1024 * 1024
    assert (s.status_public, s.log_level, s.log_json) == (False, "INFO", True)
    assert s.delivery == DeliverySettings()
    assert (s.delivery.relay_wait, s.delivery.on_receiver_down, s.delivery.max_attempts) == (5.0, "queue", 20)
    assert (s.retention.dead_letters, s.retention.audit_log) == (30 * 86400, 365 * 86400)


def test_settings_are_frozen():
    s = load_settings()
    with pytest.raises(ValueError):
        s.port = 1  # type: ignore[misc]


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("HUB_PORT", "9001")
    monkeypatch.setenv("HUB_HOST", "0.0.0.0")
    monkeypatch.setenv("HUB_BASE_URL", "https://hub.example.com/")
    monkeypatch.setenv("HUB_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("HUB_COUNTRY_CODE", "DE")
    monkeypatch.setenv("HUB_PARTY_ID", "AB1")
    monkeypatch.setenv("HUB_STATUS_PUBLIC", "true")
    monkeypatch.setenv("HUB_LOG_LEVEL", "debug")
    s = load_settings()
    assert (s.port, s.host, s.country_code, s.party_id, s.status_public) == (9001, "0.0.0.0", "DE", "AB1", True)
    assert s.base_url == "https://hub.example.com"
    assert s.versions_url == "https://hub.example.com/ocpi/versions"
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.log_level == "DEBUG"


def test_keyword_overrides_beat_env(monkeypatch):
    monkeypatch.setenv("HUB_PORT", "9001")
    assert load_settings(port=9002).port == 9002


def test_documented_example_toml_loads_and_matches_defaults(monkeypatch):
    monkeypatch.setenv("HUB_CONFIG", str(EXAMPLE))
    from_file = load_settings()
    monkeypatch.delenv("HUB_CONFIG")
    assert from_file.model_dump() == load_settings().model_dump()


def test_toml_file_and_env_precedence(tmp_path, monkeypatch):
    path = write(tmp_path, 'port = 9100\nname = "Roam"\n[delivery]\nrelay_wait = 2.0\nmax_attempts = 3\n')
    monkeypatch.setenv("HUB_CONFIG", str(path))
    s = load_settings()
    assert (s.port, s.name, s.delivery.relay_wait, s.delivery.max_attempts) == (9100, "Roam", 2.0, 3)
    monkeypatch.setenv("HUB_PORT", "9200")
    monkeypatch.setenv("HUB_DELIVERY__RELAY_WAIT", "7")
    s = load_settings()
    assert (s.port, s.name, s.delivery.relay_wait, s.delivery.max_attempts) == (9200, "Roam", 7.0, 3)


def test_nested_env_delivery(monkeypatch):
    monkeypatch.setenv("HUB_DELIVERY__RELAY_WAIT", "2.5")
    monkeypatch.setenv("HUB_DELIVERY__ON_RECEIVER_DOWN", "fail")
    s = load_settings()
    assert (s.delivery.relay_wait, s.delivery.on_receiver_down) == (2.5, "fail")
    assert s.delivery.max_attempts == 20


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"HUB_PORT": "70000"}, "port"),
        ({"HUB_PORT": "0"}, "port"),
        ({"HUB_PORT": "eighty"}, "port"),
        ({"HUB_COUNTRY_CODE": "NLD"}, "country_code"),
        ({"HUB_COUNTRY_CODE": "N1"}, "country_code"),
        ({"HUB_PARTY_ID": "H_B"}, "party_id"),
        ({"HUB_PARTY_ID": "HUBS"}, "party_id"),
        ({"HUB_BASE_URL": "hub.example.com"}, "base_url"),
        ({"HUB_BASE_URL": "ftp://hub.example.com"}, "base_url"),
        ({"HUB_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"HUB_MAX_BODY_BYTES": "10"}, "max_body_bytes"),
        ({"HUB_TOKEN_A_TTL": "-1"}, "token_a_ttl"),
        ({"HUB_DELIVERY__RELAY_WAIT": "0"}, "delivery.relay_wait"),
        ({"HUB_DELIVERY__ON_RECEIVER_DOWN": "drop"}, "delivery.on_receiver_down"),
        ({"HUB_RETENTION__DEAD_LETTERS": "-1"}, "retention.dead_letters"),
        ({"HUB_RETENTION__AUDIT_LOG": "-86400"}, "retention.audit_log"),
    ],
)
def test_invalid_env_is_one_line_error(monkeypatch, env, field):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("invalid settings: ")
    assert field in message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("colour = 'blue'\n", "colour"),
        ("[delivery]\nrelay_wiat = 1.0\n", "relay_wiat"),
        ("port = 'x'\n", "port"),
        ("port = \n", "invalid settings"),  # TOML syntax error
    ],
)
def test_invalid_toml_is_one_line_error(tmp_path, monkeypatch, text, needle):
    monkeypatch.setenv("HUB_CONFIG", str(write(tmp_path, text)))
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "\n" not in str(info.value)
    assert needle in str(info.value)


def test_missing_config_file(tmp_path, monkeypatch):
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("HUB_CONFIG", str(missing))
    with pytest.raises(SettingsError, match="not a file") as info:
        load_settings()
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_keyword_values_are_validated_too(tmp_path):
    # The test fixtures build Settings directly; keyword values are validated the same way.
    with pytest.raises(ValueError):
        Settings(port=0)
    assert Settings(database=tmp_path / "x.db").database_path == tmp_path / "x.db"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "env", [{"HUB_PORT": "abc"}, {"HUB_CONFIG": "/nonexistent/hub.toml"}, {"HUB_RETENTION__DEAD_LETTERS": "-1"}]
)
def test_cli_with_invalid_settings_exits_2_with_one_line(tmp_path, env):
    result = run_cli({"HUB_DATABASE": str(tmp_path / "hub.sqlite3"), **env}, "migrate")
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocpi-hub: "), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "hub.sqlite3").exists()
