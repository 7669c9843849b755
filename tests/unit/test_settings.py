from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chatserver.settings import REPO_ROOT, ConfigError, load_settings, sentinel_addresses

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


@pytest.mark.parametrize(("overrides", "message"), [
    ({"trusted_proxy_hops": 0}, "trusted_proxy_hops must be between"),
    ({"client_addr_header": "X-Forwarded-For", "trusted_proxy_hops": 9},
     "trusted_proxy_hops must be between"),
    ({"trusted_proxy_hops": 2}, "trusted_proxy_hops needs client_addr_header"),
    ({"client_addr_header": "X-Forwarded-For: 1.2.3.4"}, "client_addr_header must be a header"),
    ({"ipv6_group_prefix_len": 16}, "ipv6_group_prefix_len"),
    ({"ipv6_group_prefix_len": 129}, "ipv6_group_prefix_len"),
    ({"ipv4_group_prefix_len": 8}, "ipv4_group_prefix_len"),
    ({"ipv4_group_prefix_len": 33}, "ipv4_group_prefix_len"),
    ({"lockout_base_secs": 0}, "lockout_base_secs"),
    ({"lockout_base_secs": 7200, "lockout_max_secs": 3600}, "lockout_base_secs"),
])
def test_address_and_lockout_settings_are_checked_at_load(
        tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(config_file=TEST_CONFIG, env={"CHAT_DATA_DIR": str(tmp_path)},
                      overrides=overrides)


def test_proxy_settings_from_env(tmp_path: Path) -> None:
    s = load_settings(config_file=TEST_CONFIG, env={
        "CHAT_DATA_DIR": str(tmp_path), "CHAT_CLIENT_ADDR_HEADER": "X-Forwarded-For",
        "CHAT_TRUSTED_PROXY_HOPS": "2", "CHAT_IPV6_GROUP_PREFIX_LEN": "56"})
    assert (s.client_addr_header, s.trusted_proxy_hops, s.ipv6_group_prefix_len) == (
        "X-Forwarded-For", 2, 56)
    assert s.ipv4_group_prefix_len == 32


def test_the_public_origin_follows_host_and_port_unless_set(tmp_path: Path) -> None:
    def origin(**env: str) -> str:
        return load_settings(env={"CHAT_DATA_DIR": str(tmp_path), **env}).public_origin

    assert origin() == "http://localhost:8080"
    assert origin(CHAT_PORT="18437") == "http://localhost:18437"
    assert origin(CHAT_HOST="0.0.0.0", CHAT_PORT="9000") == "http://localhost:9000"
    assert origin(CHAT_HOST="chat.lan", CHAT_PORT="9000") == "http://chat.lan:9000"
    assert origin(CHAT_HOST="fd00::5", CHAT_PORT="9000") == "http://[fd00::5]:9000"
    assert origin(CHAT_PORT="18437", CHAT_PUBLIC_ORIGIN="https://chat.example.org") == \
        "https://chat.example.org"


def test_production_must_name_its_public_origin(tmp_path: Path) -> None:
    cfg = tmp_path / "prod.toml"
    text = (REPO_ROOT / "config" / "production.example.toml").read_text(encoding="utf-8")
    cfg.write_text("\n".join(line for line in text.splitlines()
                             if not line.startswith("public_origin")), encoding="utf-8")
    with pytest.raises(ConfigError, match="public_origin must be set in production"):
        load_settings(config_file=cfg, env={}, overrides={"data_dir": str(tmp_path)})


@pytest.mark.parametrize(("url", "problem"), [
    ("mysql://chat@db/chat", "database_url must be empty"),
    ("postgresql://", "database_url must be empty"),
    ("postgresql://chat:hunter2@db:5432/chat", "must not hold a password"),
    ("postgresql://chat@db/chat?password=hunter2", "must not hold a password"),
])
def test_database_url_is_checked_at_load(tmp_path: Path, url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        load_settings(env={"CHAT_DATA_DIR": str(tmp_path), "CHAT_DATABASE_URL": url})
    assert "hunter2" not in str(caught.value)


def test_database_password_comes_from_the_secrets_and_is_never_shown(tmp_path: Path) -> None:
    env = {"CHAT_DATA_DIR": str(tmp_path), "CHAT_DATABASE_URL": "postgresql://chat@db/chat"}
    s = load_settings(env=env)
    assert s.database_url == "postgresql://chat@db/chat"
    assert s.require_secrets().database_password == ""
    with (tmp_path / "secrets.toml").open("a") as fh:
        fh.write('database_password = "from-file"\n')
    assert load_settings(env=env).require_secrets().database_password == "from-file"
    s = load_settings(env={**env, "CHAT_SECRET_DATABASE_PASSWORD": "from-env"})
    assert s.require_secrets().database_password == "from-env"
    assert "from-env" not in repr(s) and "from-env" not in repr(s.require_secrets())
    assert load_settings(env={"CHAT_DATA_DIR": str(tmp_path)}).database_url == ""


def test_canned_responses_ship_in_three_languages_and_reach_the_console_shape(
        tmp_path: Path) -> None:
    from chatserver.settings import canned_texts

    texts = canned_texts(load_settings(env={"CHAT_DATA_DIR": str(tmp_path)}))
    assert [c["key"] for c in texts] == ["greeting", "duty_to_report", "safe_now", "closing"]
    for c in texts:
        assert set(c["title"]) == set(c["text"]) == {"sv", "en", "ar"}


@pytest.mark.parametrize(("table", "problem"), [
    ('key = "hi"\ntitle = {en = "Hi"}\ntext = {en = "Hello"}', "title must be a table"),
    ('key = "Hi there"\ntitle = {sv = "Hej"}\ntext = {sv = "Hej"}', "key must be a unique"),
    ('key = "hi"\ntitle = {sv = "Hej"}\ntext = {sv = "  "}', "text.sv must be a non-empty"),
    ('key = "hi"\ntitle = {sv = "Hej"}\ntext = {sv = "Hej"}\nsend = true', "exactly key"),
])
def test_bad_canned_responses_are_refused_at_load(tmp_path: Path, table: str,
                                                  problem: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[[service.canned]]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_settings(config_file=cfg, env={"CHAT_DATA_DIR": str(tmp_path)})


def test_more_canned_responses_than_shortcuts_are_refused(tmp_path: Path) -> None:
    one = '[[service.canned]]\nkey = "k{n}"\ntitle = {{sv = "T"}}\ntext = {{sv = "T"}}\n'
    cfg = tmp_path / "c.toml"
    cfg.write_text("".join(one.format(n=n) for n in range(10)), encoding="utf-8")
    with pytest.raises(ConfigError, match="at most 9"):
        load_settings(config_file=cfg, env={"CHAT_DATA_DIR": str(tmp_path)})


REDIS = {"CHAT_REDIS_URL": "redis://chatserver@10.0.0.21:6379/0", "CHAT_NODE_ID": "a"}


@pytest.mark.parametrize(("env", "problem"), [
    ({**REDIS, "CHAT_REDIS_SENTINELS": "10.0.0.21"}, "redis_sentinels must be empty or host:port"),
    ({**REDIS, "CHAT_REDIS_SENTINELS": "10.0.0.21:26379,"}, "redis_sentinels must be empty"),
    ({**REDIS, "CHAT_REDIS_SENTINELS": "10.0.0.21:0"}, "redis_sentinels must be empty"),
    ({**REDIS, "CHAT_REDIS_SENTINELS": "a:26379,a:26379"}, "lists a Sentinel twice"),
    ({"CHAT_REDIS_SENTINELS": "10.0.0.21:26379"}, "redis_sentinels needs redis_url"),
    ({**REDIS, "CHAT_REDIS_SERVICE": "chat server"}, "redis_service must be the master name"),
    ({**REDIS, "CHAT_REDIS_WAIT_REPLICA_MS": "-1"}, "redis_wait_replica_ms must be between"),
    ({**REDIS, "CHAT_REDIS_WAIT_REPLICA_MS": "60000"}, "redis_wait_replica_ms must be between"),
])
def test_sentinel_settings_are_checked_at_load(tmp_path: Path, env: dict[str, str],
                                               problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(env={"CHAT_DATA_DIR": str(tmp_path), **env})


def test_sentinels_are_read_as_addresses(tmp_path: Path) -> None:
    s = load_settings(env={"CHAT_DATA_DIR": str(tmp_path), **REDIS,
                           "CHAT_REDIS_SENTINELS": "10.0.0.21:26379, 10.0.0.22:26379,[::1]:26380",
                           "CHAT_REDIS_WAIT_REPLICA_MS": "500"})
    assert sentinel_addresses(s.redis_sentinels) == [
        ("10.0.0.21", 26379), ("10.0.0.22", 26379), ("::1", 26380)]
    assert (s.redis_service, s.redis_wait_replica_ms) == ("chat", 500)
    # The default master name is the one deploy/redis/sentinel.conf monitors.
    assert f"sentinel monitor {s.redis_service} " in (
        REPO_ROOT / "deploy" / "redis" / "sentinel.conf").read_text()


@pytest.mark.parametrize(("key", "value"), [
    ("CHAT_QUEUE_ROUND_SLICE_PACKETS", "0"), ("CHAT_QUEUE_ROUND_PAUSE_MS", "-1"),
    ("CHAT_QUEUE_ROUND_PAUSE_MS", "50")])
def test_a_queue_round_spread_past_its_second_is_refused(tmp_path: Path, key: str,
                                                         value: str) -> None:
    with pytest.raises(ConfigError, match=key.removeprefix("CHAT_").lower()):
        load_settings(env={"CHAT_DATA_DIR": str(tmp_path), key: value})
    # Each within its bounds, but together 400 pauses of 20 ms.
    with pytest.raises(ConfigError, match="at most 500 ms"):
        load_settings(env={"CHAT_DATA_DIR": str(tmp_path), "CHAT_QUEUE_ROUND_PAUSE_MS": "20",
                           "CHAT_QUEUE_ROUND_SLICE_PACKETS": "1"})
