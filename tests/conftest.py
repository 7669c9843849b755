"""Shared fixtures. Real parts everywhere: real SQLite files, a real server on
a real TCP port, real socket.io clients. Only the clock is faked, and only in
domain tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatserver.settings import REPO_ROOT, Settings, load_settings

TEST_CONFIG = REPO_ROOT / "config" / "test.toml"
IN_CI = os.environ.get("CI", "").lower() == "true"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(config_file=TEST_CONFIG, env={"CHAT_DATA_DIR": str(data_dir)},
                         overrides=overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var")
