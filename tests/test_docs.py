"""The README documents every setting and every CLI command (so docs cannot drift from code)."""

from pathlib import Path

from config import DeliverySettings, Settings
from hub.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme():
    names = [f"HUB_{n.upper()}" for n in Settings.model_fields if n != "delivery"]
    names += [f"HUB_DELIVERY__{n.upper()}" for n in DeliverySettings.model_fields]
    missing = [n for n in names if f"`{n}`" not in README]
    assert not missing, f"settings missing from README: {missing}"


def test_every_cli_command_is_in_the_readme():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = [c for c in sub.choices if f"`{c}" not in README]
    assert not missing, f"CLI commands missing from README: {missing}"


def test_two_setup_commands_are_named():
    assert "make run" in README and "make test" in README
