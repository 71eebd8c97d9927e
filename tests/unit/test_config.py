from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import SETTINGS, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_readme() -> None:
    text = README.read_text()
    missing = [name for name, _default, _help in SETTINGS if f"`{name}`" not in text]
    assert missing == []


def test_from_env_converts_types_and_rejects_bad_values(tmp_path: Path) -> None:
    s = Settings.from_env({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_PANES_PER_PAGE": "8"})
    assert s.data_dir == tmp_path and s.panes_per_page == 8
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'portal.db'}"
    with pytest.raises(ValueError, match="PORTAL_PANES_PER_PAGE"):
        Settings.from_env({"PORTAL_PANES_PER_PAGE": "20"})
    with pytest.raises(ValueError, match="PORTAL_PREVIEW_MAX_DIM"):
        Settings.from_env({"PORTAL_PREVIEW_MAX_DIM": "big"})


def test_secret_key_is_created_once_and_private(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).with_secret()
    second = Settings(data_dir=tmp_path).with_secret()
    assert first.secret_key and first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
