from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chatserver.settings import REPO_ROOT, ConfigError, load_settings

TEST_CONFIG = REPO_ROOT / "config" / "test.toml"


def test_env_overrides_scalars_with_types(tmp_path: Path) -> None:
    s = load_settings(env={"CHAT_DATA_DIR": str(tmp_path), "CHAT_PORT": "9123",
                           "CHAT_GENERATE_SECRETS": "true", "CHAT_QUEUE_PUSH_INTERVAL_SECS": "0.5"})
    assert (s.port, s.queue_push_interval_secs) == (9123, 0.5)


def test_bad_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(env={"CHAT_DATA_DIR": str(tmp_path), "CHAT_PORT": "eighty"})


def test_unknown_key_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("porrt = 1\n")
    with pytest.raises(ConfigError, match="porrt"):
        load_settings(config_file=cfg, env={"CHAT_DATA_DIR": str(tmp_path)})


def test_secrets_never_in_config_files(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('secret_pepper = "x"\n')
    with pytest.raises(ConfigError, match="CHAT_SECRET"):
        load_settings(config_file=cfg, env={"CHAT_DATA_DIR": str(tmp_path)})


def test_cheap_password_profile_only_in_tests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refused outside tests"):
        load_settings(env={"CHAT_DATA_DIR": str(tmp_path),
                           "CHAT_PASSWORD_PROFILE": "cheapest_for_tests"})
    s = load_settings(config_file=TEST_CONFIG, env={"CHAT_DATA_DIR": str(tmp_path)})
    assert s.password_profile == "cheapest_for_tests"


def test_production_refuses_generated_secrets_and_names_missing_ones(tmp_path: Path) -> None:
    cfg = REPO_ROOT / "config" / "production.example.toml"
    with pytest.raises(ConfigError, match="CHAT_SECRET_PEPPER"):
        load_settings(config_file=cfg, env={"CHAT_DATA_DIR": str(tmp_path)},
                      overrides={"data_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="generate_secrets"):
        load_settings(config_file=cfg, env={}, overrides={"data_dir": str(tmp_path),
                                                           "generate_secrets": True})


def test_generated_secrets_are_private_and_stable(tmp_path: Path) -> None:
    a = load_settings(env={"CHAT_DATA_DIR": str(tmp_path)})
    b = load_settings(env={"CHAT_DATA_DIR": str(tmp_path)})
    path = tmp_path / "secrets.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert a.require_secrets() == b.require_secrets()
    assert "pepper" not in repr(a) or "secrets=" not in repr(a)
    assert a.require_secrets().pepper.hex() not in repr(a)


def test_env_secret_wins_and_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        load_settings(env={"CHAT_DATA_DIR": str(tmp_path), "CHAT_SECRET_PEPPER": "abcd"})


def test_max_event_bytes_fits_the_largest_valid_send(tmp_path: Path) -> None:
    s = load_settings(config_file=TEST_CONFIG, env={"CHAT_DATA_DIR": str(tmp_path)})
    b64 = 4 * ((s.max_box_bytes + 2) // 3)
    assert s.max_event_bytes > (s.max_members - 1) * b64
    assert s.max_event_bytes < 64 * 1024  # far below engine.io's 1 MB default
