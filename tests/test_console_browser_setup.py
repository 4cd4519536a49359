"""Without chromium the browser tests skip with an install hint, except under CI=true, where they fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_console_browser import require_chromium


@pytest.fixture
def no_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no chromium to find
    monkeypatch.delenv("HUB_CHROMIUM", raising=False)
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("no_chromium")
def test_missing_chromium_skips_with_the_install_hint() -> None:
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_chromium()


@pytest.mark.usefixtures("no_chromium")
def test_missing_chromium_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        require_chromium()


def test_chromium_is_found_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("HUB_CHROMIUM", raising=False)
    assert require_chromium() == str(fake)
