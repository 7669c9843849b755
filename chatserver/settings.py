"""One frozen Settings, loaded once: config/default.toml, then the file named by
CHAT_CONFIG (if any), then ``CHAT_*`` environment variables for scalar keys.

Secrets never come from TOML config: they come from ``CHAT_SECRET_*`` env vars or
the secrets file. For the embedded default the secrets file is generated on first
run (mode 0600, under the git-ignored data dir); production config sets
``generate_secrets = false`` so a missing secret fails loudly, naming the key.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import secrets as _secrets
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "config"

ENVIRONMENTS = ("production", "development", "test")
PASSWORD_PROFILES = ("rfc9106_low_memory", "cheapest_for_tests")
PASSPHRASE_PROFILES = ("return_v1", "cheapest_for_tests")
GC_POLICIES = ("freeze", "freeze_young", "freeze_only", "default")
SECRET_NAMES = ("pepper", "session_key", "totp_key", "audit_key")
SECRET_BYTES = 32
MAX_PROXY_HOPS = 8
MAX_LOCKOUT_SECS = 365 * 24 * 3600
HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class ConfigError(Exception):
    """The configuration is unusable; the message names the key."""


@dataclass(frozen=True)
class Secrets:
    """Server secrets; 32 random bytes each. Never logged, never in TOML."""

    pepper: bytes = field(repr=False)  # salts return passphrases' derivation (their lookup keys)
    session_key: bytes = field(repr=False)  # keys staff session token hashing
    totp_key: bytes = field(repr=False)  # encrypts TOTP seeds at rest
    # Keys the audit chain's links (MACs); its own secret so that a verifier
    # can hold it without the pepper (docs/decisions/0008).
    audit_key: bytes = field(repr=False)
    # The PostgreSQL role's password, when ``database_url`` is set and the
    # server needs one (CHAT_SECRET_DATABASE_PASSWORD or ``database_password``
    # in the secrets file). Any text; empty means none. Never generated.
    database_password: str = field(default="", repr=False)
    # The password of the Redis ACL user, when ``redis_url`` is set and the
    # server needs one (CHAT_SECRET_REDIS_PASSWORD or ``redis_password`` in
    # the secrets file). Never generated.
    redis_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    # The origin browsers use to reach us (behind the TLS proxy in production).
    # Every socket.io namespace and state-changing route accepts only this
    # Origin. Unset, it follows host and port (load_settings, local_origin), so
    # CHAT_PORT alone gives a working server; production must set it.
    public_origin: str = "http://localhost:8080"
    # Header set by the trusted TLS proxy carrying the client address, or "" to
    # use the socket peer. The address is only ever HMAC-ed for rate limits.
    client_addr_header: str = ""
    # How many proxies in front of us append to that header: the client is the
    # entry this many places from the right; entries further left are the
    # client's own writing and are ignored (transport/ratelimit.py).
    trusted_proxy_hops: int = 1
    # Per-address limits count IPv4 per /32 and IPv6 per /64: one IPv6
    # subscriber holds a whole /64, so a per-address count would be 2^64 counts.
    ipv4_group_prefix_len: int = 32
    ipv6_group_prefix_len: int = 64
    # What anonymous clients may make one node hold (transport/admission.py).
    # Per address group: a school or a mobile operator's carrier-grade NAT puts
    # many youths behind one IPv4 address, so far above a household's needs.
    max_connections_per_address: int = 64
    # Handshakes not yet joined to a namespace: a real page joins at once.
    max_pending_handshakes_per_address: int = 16
    max_pending_handshakes: int = 2000
    handshake_join_secs: float = 10.0
    # A refused handshake is answered after this delay (the connection held
    # meanwhile, at most max_pending_handshakes of them): a client flooding in
    # a loop is slowed to one try per delay per connection.
    handshake_refusal_delay_secs: float = 1.0
    # Youths and liaisons joined, per node: past it a youth is told the chat is
    # full and given the numbers to call. The national evening peak is ~10 000.
    max_anonymous_connections: int = 20000
    data_dir: str = "var"
    database_file: str = "chatserver.sqlite3"
    # Empty: the embedded SQLite file above. "postgresql://user@host:port/db":
    # PostgreSQL (chatserver/storage/postgres.py) instead; no password in the
    # URL, it comes from the secrets (Secrets.database_password).
    database_url: str = ""
    # Empty: live state (queue, conversations, ciphertext buffers) in this one
    # process. "redis://user@host:port/db": several nodes share it through
    # Redis (docs/design/live-state.md); no password in the URL, it comes from
    # the secrets (Secrets.redis_password).
    redis_url: str = ""
    # Empty: redis_url names the Redis primary. "host:port,host:port,...": the
    # Redis Sentinels that watch the primary named redis_service; a node asks
    # them where the primary is and asks again after a failover. redis_url
    # then gives only the user, the database and the scheme.
    redis_sentinels: str = ""
    # The master name the Sentinels monitor ("sentinel monitor chat ..." in
    # deploy/redis/sentinel.conf).
    redis_service: str = "chat"
    # 0: an append is answered once the primary has it. N > 0: each append
    # also waits (WAIT 1 N) until a replica has it, at most N ms, so a
    # failover cannot lose a message its sender was told was sent
    # (docs/operations.md, "Redis"; the cost: docs/performance.md).
    redis_wait_replica_ms: int = 0
    # A node that finds Redis empty (a new deployment, or a Redis restarted
    # while other nodes hold the state) waits this long for those nodes'
    # heartbeats before starting a new, empty state (docs/design/live-state.md).
    redis_empty_wait_secs: float = 7.0
    # This node's name, 1-12 of a-z and 0-9; required with redis_url. Every
    # engine.io session id of the node starts with "<node_id>." so that a
    # load balancer routes the long-polling fallback to the node that holds
    # the session, with no cookie and no client address (docs/operations.md).
    node_id: str = ""
    secrets_file: str = "secrets.toml"
    generate_secrets: bool = True
    password_profile: str = "rfc9106_low_memory"  # noqa: S105  # a profile name, not a password
    log_level: str = "INFO"
    static_dir: str = "web_client/dist"
    partners_file: str = "config/partners.toml"  # referral directory; relative to the repo root

    # Conversations
    max_members: int = 4  # youth, counsellor, liaison, second counsellor (docs/security-design.md)
    grace_secs: int = 120  # a dropped participant's place is kept this long
    # A youth gone this long is shown as offline (queue, console) and passed
    # over by take next; the place is still kept for grace_secs. A counsellor's
    # console gone this long is shown to the youth as "waiting for them".
    presence_grace_secs: int = 5
    pause_max_secs: int = 600  # "someone is coming": place kept at most this long
    backlog_max_boxes: int = 500  # undelivered boxes held per recipient, RAM only
    max_text_chars: int = 2000
    # Plaintext is padded to 256-byte blocks; 8 KiB holds max_text_chars of any script.
    max_padded_plaintext_bytes: int = 8192
    default_capacity: int = 3
    queue_max: int = 20000
    eta_secs_per_position: int = 180  # used until real claim intervals are observed
    queue_push_interval_secs: float = 1.0  # coalesce queue updates to at most one a second
    # Beyond the first few places, one youth hears of a new position at most this
    # often: a claim moves everyone, and 10 000 pushes a second would cost more
    # than the chat itself.
    queue_position_min_interval_secs: float = 5.0
    # Behind the first 20 places (chatserver/domain/chat/rounds.py): a far-back
    # youth's place and estimate change slowly in meaning, and there are many.
    queue_position_far_interval_secs: float = 30.0
    # A counsellor at capacity cannot claim: their queue view refreshes this often.
    queue_snapshot_at_capacity_secs: float = 5.0
    # At most one queue snapshot per counsellor this often, whatever the queue
    # does: one youth toggling pause twice a second must not make every
    # counsellor on duty download a full snapshot (~11 KiB) each round.
    queue_snapshot_min_gap_secs: float = 1.0
    # After one whole view, consoles get only the changes (queue_delta); false
    # sends the whole view every time, as before (for measurements only).
    queue_deltas: bool = True
    staff_queue_snapshot_max: int = 50
    # A counsellor at capacity cannot claim: their view lists the first few
    # and counts the rest (docs/design/queue.md, "Pushes to counsellors").
    staff_queue_at_capacity_max: int = 5
    # A queue round's pushes go out this many at a time, the loop handed back
    # for this long between: at a national peak a round is ~400 pushes, and
    # sent back to back they held relayed messages up (docs/performance.md,
    # "Queue rounds spread out"). 32 and 0 send as before (measurements).
    queue_round_slice_packets: int = 16
    queue_round_pause_ms: float = 2.0

    # Staff sessions and login
    session_idle_secs: int = 1800
    # How soon an open console closes after its account is disabled from the
    # CLI or its session expires (one query per sweep, not one per event).
    staff_recheck_secs: float = 5.0
    session_absolute_secs: int = 36000
    login_max_failures: int = 5
    lockout_base_secs: int = 60
    lockout_max_secs: int = 3600
    totp_valid_window: int = 1

    # Per-connection rate limits (token buckets): events per minute and burst.
    rate_send_per_min: int = 120
    rate_send_burst: int = 20
    rate_other_per_min: int = 120
    rate_other_burst: int = 30
    # Youth conversation starts per client address per hour (keyed by HMAC).
    rate_starts_per_hour: int = 20
    # Staff login attempts per client address per hour, on top of the
    # per-account lockout (which alone would let one address try many names).
    rate_logins_per_hour: int = 60

    stats_flush_secs: int = 900
    # Reports show a count from 1 to this minus one as "<N" (docs/statistics.md).
    stats_suppress_below: int = 5
    # The local time of the hour-of-week bands for unmet demand (an IANA zone).
    stats_timezone: str = "Europe/Stockholm"
    # Audit entries older than this are pruned daily behind a signed
    # checkpoint (docs/design/audit.md, "Retention"; the default's reasons:
    # docs/privacy.md, "Retention").
    audit_retention_days: int = 730

    # Continuity and escalation (docs/design/returning.md, invites.md)
    passphrase_profile: str = "return_v1"  # noqa: S105  # a profile name, not a secret
    return_ttl_secs: int = 30 * 24 * 3600  # single use, at most 30 days (docs/security-design.md)
    return_tries_per_connection: int = 3
    rate_returns_per_hour: int = 10  # per client address (HMAC-keyed)
    return_failures_per_min: int = 60  # global budget; beyond half, answers slow down
    personal_wait_secs: int = 900  # waiting for one's own counsellor, then the choice again
    invite_ttl_secs: int = 900
    invite_tries_per_connection: int = 3
    rate_invites_per_hour: int = 20  # liaison join attempts per client address
    transfer_offer_secs: int = 120  # an unanswered transfer offer counts as declined
    # Prometheus metrics on 127.0.0.1:<metrics_port> only (0 = off): a port the
    # TLS proxy never forwards, so aggregate load figures stay internal.
    metrics_port: int = 0
    # python-socketio runs each event in its own task when true; false (the
    # default, measured in docs/decisions/0002) handles each connection's events
    # inline, in arrival order: one task less per event, and a handler that
    # waits (Argon2, an audit commit) holds up only its own connection's reads.
    socketio_async_handlers: bool = False
    # Each engine.io connection's outgoing-packet queue: true gives it a
    # PacketQueue that allocates no deques up front (~3.5 KB less per
    # connection, chatserver/transport/packet_queue.py); false, the library's
    # asyncio.Queue. A lever measured in docs/performance.md, not a tuning knob.
    engineio_lean_queue: bool = True
    ping_interval_secs: int = 25
    ping_timeout_secs: int = 20
    # Cyclic GC strategy (chatserver/gc_policy.py, docs/decisions/0002): "freeze"
    # moves long-lived objects out of the collector's reach after start-up, after
    # every full collection and every gc_freeze_interval_secs; "freeze_young"
    # collects only the young generations before each timed freeze;
    # "freeze_only" collects nothing before it (the automatic young
    # collections run in between); "default" leaves CPython's collector as shipped.
    gc_policy: str = "freeze_only"
    gc_freeze_interval_secs: float = 0.25  # measured in docs/performance.md
    # Frozen objects that later die in a reference cycle are reclaimed only by a
    # full unfreeze-and-collect, run this often (0 = never). One pause each time.
    gc_full_collect_interval_secs: float = 3600.0
    # ... and after this many WebSockets opened (0 = no such trigger), at most
    # every 5 min: each closed WebSocket leaves ~14 KB in a reference cycle
    # inside python-engineio (docs/decisions/0007), so this bounds that memory
    # (50 000 ≈ 0.7 GB) unless more connect than that within 5 min.
    gc_full_collect_after_websockets: int = 50000
    # Generation-0 threshold under the freeze policies (0 = the interpreter's
    # 700). A lever measured in docs/performance.md, not a tuning knob.
    gc_young_threshold: int = 0
    # Generation-1 and -2 thresholds under the freeze policies, when
    # gc_freeze_interval_secs > 0 (0 = the interpreter's 10 and 10). The timed
    # freeze already takes every survivor of a young collection out of the
    # collector's reach, so automatic older collections only walked what the
    # next tick would freeze anyway: ~19 % of a saturated server's CPU
    # (docs/performance.md). The default means they never come.
    gc_older_threshold: int = 1_000_000
    exit_url: str = "https://www.google.com/"

    # Service data (texts, hours, alternatives, lists) from the [service] table.
    service: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    secrets: Secrets | None = field(default=None, repr=False)

    @property
    def data_path(self) -> Path:
        p = Path(self.data_dir)
        return p if p.is_absolute() else REPO_ROOT / p

    @property
    def database_path(self) -> Path:
        return self.data_path / self.database_file

    @property
    def max_box_bytes(self) -> int:
        # XChaCha20-Poly1305 adds a 16-byte tag.
        return self.max_padded_plaintext_bytes + 16

    @property
    def max_event_bytes(self) -> int:
        """The largest valid socket.io event: a send with max_members-1 boxes."""
        b64 = 4 * ((self.max_box_bytes + 2) // 3)
        per_box = b64 + 32 + 64 + 64  # nonce (b64), member id, JSON keys
        return (self.max_members - 1) * per_box + 1024

    def require_secrets(self) -> Secrets:
        if self.secrets is None:
            raise ConfigError("secrets were not loaded")
        return self.secrets


def _coerce(name: str, raw: Any, default: Any) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            if not isinstance(raw, str | int | float):
                raise ValueError(raw)
            return str(raw)
    except ValueError:
        raise ConfigError(f"config key {name!r} must be a {kind.__name__}") from None
    raise ConfigError(f"config key {name!r} cannot be set here")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    config_dir: Path = DEFAULT_CONFIG_DIR,
) -> Settings:
    """Build the one Settings object. ``overrides`` is for tests and the CLI."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    service: dict[str, Any] = {}
    files = [config_dir / "default.toml"]
    chosen = config_file or env.get("CHAT_CONFIG")
    if chosen:
        files.append(Path(chosen))
    for path in files:
        data = _read_toml(path)
        service.update(data.pop("service", {}))
        if any(k.startswith("secret") for k in data):
            raise ConfigError(f"{path}: secrets must not be in config files; use CHAT_SECRET_*")
        merged.update(data)

    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    scalar = {k for k, v in defaults.items() if isinstance(v, bool | int | float | str)}
    for key in scalar:
        env_key = "CHAT_" + key.upper()
        if env_key in env:
            merged[key] = env[env_key]
    if overrides:
        merged.update({k: v for k, v in overrides.items() if k != "service"})
        service.update(overrides.get("service", {}))

    values: dict[str, Any] = {}
    for key, raw in merged.items():
        if key not in scalar:
            raise ConfigError(f"unknown config key {key!r}")
        values[key] = _coerce(key, raw, defaults[key])
    if "public_origin" not in values:
        if values.get("environment", defaults["environment"]) == "production":
            raise ConfigError("public_origin must be set in production: the https:// "
                              "origin browsers use, e.g. https://chat.example.org")
        values["public_origin"] = local_origin(values.get("host", defaults["host"]),
                                               values.get("port", defaults["port"]))
    settings = Settings(**values, service=_freeze(service))
    _check(settings)
    return dataclasses.replace(settings, secrets=_load_secrets(settings, env))


# Addresses a browser on the same machine reaches as "localhost". A page's
# Origin names the host the browser was given, so the origin we derive is the
# one the start-up line tells the person to open.
LOOPBACK_OR_ANY = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""})  # noqa: S104


def local_origin(host: str, port: int) -> str:
    """The origin of ``http://host:port`` as a browser on a development machine
    names it: loopback and wildcard addresses become ``localhost``."""
    name = "localhost" if host in LOOPBACK_OR_ANY else host
    if ":" in name:
        name = f"[{name}]"  # an IPv6 literal
    return f"http://{name}:{port}"


def _check(s: Settings) -> None:
    if s.environment not in ENVIRONMENTS:
        raise ConfigError(f"environment must be one of {ENVIRONMENTS}")
    if s.password_profile not in PASSWORD_PROFILES:
        raise ConfigError(f"password_profile must be one of {PASSWORD_PROFILES}")
    if s.password_profile == "cheapest_for_tests" and s.environment != "test":  # noqa: S105  # a profile name
        raise ConfigError("password_profile 'cheapest_for_tests' is refused outside tests")
    if s.passphrase_profile not in PASSPHRASE_PROFILES:
        raise ConfigError(f"passphrase_profile must be one of {PASSPHRASE_PROFILES}")
    if s.passphrase_profile == "cheapest_for_tests" and s.environment != "test":  # noqa: S105
        raise ConfigError("passphrase_profile 'cheapest_for_tests' is refused outside tests")
    if s.environment == "production" and s.generate_secrets:
        raise ConfigError("generate_secrets must be false in production: provision secrets")
    if not s.public_origin.startswith(("https://", "http://")):
        raise ConfigError("public_origin must be an http(s) origin, e.g. https://chat.example.org")
    if s.public_origin.endswith("/"):
        raise ConfigError("public_origin must not end with '/'")
    if not 2 <= s.max_members <= 4:
        raise ConfigError("max_members must be between 2 and 4")
    if s.max_padded_plaintext_bytes % 256:
        raise ConfigError("max_padded_plaintext_bytes must be a multiple of 256")
    for name in ("grace_secs", "presence_grace_secs", "pause_max_secs", "backlog_max_boxes",
                 "default_capacity",
                 "queue_max", "session_idle_secs", "session_absolute_secs",
                 "login_max_failures", "rate_send_per_min", "rate_other_per_min"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    if s.session_idle_secs > s.session_absolute_secs:
        raise ConfigError("session_idle_secs must not exceed session_absolute_secs")
    # The store computes the lock in SQL as base << doublings: bounded, it stays in 64 bits.
    if not 0 < s.lockout_base_secs <= s.lockout_max_secs <= MAX_LOCKOUT_SECS:
        raise ConfigError("lockout_base_secs must be positive and at most lockout_max_secs, "
                          f"and lockout_max_secs at most {MAX_LOCKOUT_SECS}")
    if s.client_addr_header and not HEADER_NAME.fullmatch(s.client_addr_header):
        raise ConfigError("client_addr_header must be a header name, e.g. X-Forwarded-For")
    if not 1 <= s.trusted_proxy_hops <= MAX_PROXY_HOPS:
        raise ConfigError(f"trusted_proxy_hops must be between 1 and {MAX_PROXY_HOPS}")
    if s.trusted_proxy_hops != 1 and not s.client_addr_header:
        raise ConfigError("trusted_proxy_hops needs client_addr_header: "
                          "without a header the socket peer is the client")
    for name in ("max_connections_per_address", "max_pending_handshakes_per_address",
                 "max_pending_handshakes", "max_anonymous_connections", "handshake_join_secs"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    if not 0 <= s.handshake_refusal_delay_secs <= 30:
        raise ConfigError("handshake_refusal_delay_secs must be between 0 and 30")
    # Shorter prefixes would put a whole provider's customers in one bucket.
    if not 16 <= s.ipv4_group_prefix_len <= 32:
        raise ConfigError("ipv4_group_prefix_len must be between 16 and 32")
    if not 32 <= s.ipv6_group_prefix_len <= 128:
        raise ConfigError("ipv6_group_prefix_len must be between 32 and 128")
    if not 0 <= s.totp_valid_window <= 1:
        raise ConfigError("totp_valid_window must be 0 or 1")
    # A national peak's round (~400 pushes) must be out well within its second.
    if not 1 <= s.queue_round_slice_packets <= 1000:
        raise ConfigError("queue_round_slice_packets must be between 1 and 1000")
    if not 0 <= s.queue_round_pause_ms <= 20 or \
            -(-400 // s.queue_round_slice_packets) * s.queue_round_pause_ms > 500:
        raise ConfigError("queue_round_pause_ms must be between 0 and 20, and a round of 400 "
                          "pushes (400 / queue_round_slice_packets pauses) at most 500 ms")
    if not 2 <= s.stats_suppress_below <= 100:
        raise ConfigError("stats_suppress_below must be between 2 and 100")
    _check_timezone(s.stats_timezone)
    # Under 90 days nobody could follow up a quarter's work; over ten years
    # is longer than any documentation rule this kind of service answers to.
    if not 90 <= s.audit_retention_days <= 3650:
        raise ConfigError("audit_retention_days must be between 90 and 3650")
    _check_canned(s.service.get("canned", ()), s.max_text_chars)
    if s.gc_policy not in GC_POLICIES:
        raise ConfigError(f"gc_policy must be one of {GC_POLICIES}")
    check_database_url(s.database_url)
    check_redis(s.redis_url, s.node_id)
    check_sentinels(s.redis_sentinels, s.redis_service, s.redis_url)
    # Below redis-py's 5 s socket timeout: a WAIT that outlived it would be
    # taken for a failed append and the command appended again.
    if not 0 <= s.redis_wait_replica_ms <= 4000:
        raise ConfigError("redis_wait_replica_ms must be between 0 (off) and 4000")
    if not 0 <= s.redis_empty_wait_secs <= 60:
        raise ConfigError("redis_empty_wait_secs must be between 0 and 60")
    if s.gc_freeze_interval_secs < 0 or s.gc_full_collect_interval_secs < 0 or \
            s.gc_young_threshold < 0 or s.gc_full_collect_after_websockets < 0 or \
            s.gc_older_threshold < 0:
        raise ConfigError("gc_freeze_interval_secs, gc_full_collect_interval_secs, "
                          "gc_full_collect_after_websockets, gc_young_threshold and "
                          "gc_older_threshold must not be negative")


CANNED_MAX = 9  # the console inserts them with Alt+1 … Alt+9
CANNED_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
LANG_CODE = re.compile(r"[a-z]{2,3}")


def _check_canned(entries: Any, max_chars: int) -> None:
    """[[service.canned]]: the console's canned responses (docs/operations.md).
    Each has a key, a title and a text per language; Swedish is required."""
    if not isinstance(entries, tuple | list) or len(entries) > CANNED_MAX:
        raise ConfigError(f"service.canned must be at most {CANNED_MAX} [[service.canned]] tables")
    seen: set[str] = set()
    for n, entry in enumerate(entries, 1):
        where = f"service.canned #{n}"
        if not isinstance(entry, Mapping) or set(entry) != {"key", "title", "text"}:
            raise ConfigError(f"{where} must have exactly key, title and text")
        key = entry["key"]
        if not isinstance(key, str) or not CANNED_KEY.fullmatch(key) or key in seen:
            raise ConfigError(f"{where}: key must be a unique lower-case code like \"greeting\"")
        seen.add(key)
        for part, limit in (("title", 40), ("text", max_chars)):
            texts = entry[part]
            if not isinstance(texts, Mapping) or "sv" not in texts:
                raise ConfigError(f"{where} ({key}): {part} must be a table of languages with sv, "
                                  "e.g. {sv = \"…\", en = \"…\"}")
            for code, text in texts.items():
                if not LANG_CODE.fullmatch(code) or not isinstance(text, str) \
                        or not text.strip() or len(text) > limit:
                    raise ConfigError(f"{where} ({key}): {part}.{code} must be a non-empty text "
                                      f"of at most {limit} characters")


def canned_texts(s: Settings) -> list[dict[str, Any]]:
    """The canned responses as the console receives them (GET /staff/api/me)."""
    return [{"key": c["key"], "title": dict(c["title"]), "text": dict(c["text"])}
            for c in s.service.get("canned", ())]


def _check_timezone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError("stats_timezone must be an IANA time zone, "
                          "e.g. Europe/Stockholm") from None


NODE_ID = re.compile(r"[a-z0-9]{1,12}")


def check_redis(url: str, node_id: str) -> None:
    """``redis_url`` empty or redis:// (rediss:// for TLS) with no password,
    and a ``node_id`` to go with it."""
    if node_id and not NODE_ID.fullmatch(node_id):
        raise ConfigError("node_id must be 1-12 characters of a-z and 0-9")
    if not url:
        return
    scheme, sep, rest = url.partition("://")
    if scheme not in ("redis", "rediss") or not sep or not rest:
        raise ConfigError("redis_url must be empty (embedded) or redis://user@host:port/db")
    userinfo, at, _ = rest.partition("@")
    if at and ":" in userinfo:
        raise ConfigError("redis_url must not hold a password: set CHAT_SECRET_REDIS_PASSWORD")
    if not node_id:
        raise ConfigError("redis_url needs node_id: every node of a deployment has its own")


SENTINEL_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """``redis_sentinels`` as (host, port) pairs: "host:port,host:port"; an
    IPv6 address in brackets ("[::1]:26379")."""
    found = []
    for item in (part.strip() for part in text.split(",")):
        host, sep, port = item.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 \
                or any(c.isspace() or c in "/@[]" for c in host):
            raise ConfigError("redis_sentinels must be empty or host:port,host:port,... "
                              f"(not {item!r})")
        found.append((host, int(port)))
    return found


def check_sentinels(text: str, service: str, url: str) -> None:
    """``redis_sentinels`` empty, or addresses of Sentinels (three, on three
    machines, in the shipped deployment) with ``redis_url`` set beside them."""
    if not SENTINEL_SERVICE.fullmatch(service):
        raise ConfigError("redis_service must be the master name the Sentinels monitor "
                          "(1-64 of A-Z, a-z, 0-9, _ . -), e.g. chat")
    if not text.strip():
        return
    addresses = sentinel_addresses(text)
    if len(set(addresses)) != len(addresses):
        raise ConfigError("redis_sentinels lists a Sentinel twice")
    if not url:
        raise ConfigError("redis_sentinels needs redis_url (its user and database; the "
                          "Sentinels name the primary's address)")


def check_database_url(url: str) -> None:
    """Empty, or a postgresql:// URL without a password (a URL ends up in
    error messages and shell history; the password belongs in the secrets)."""
    if not url:
        return
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres") or not sep or not rest:
        raise ConfigError("database_url must be empty (SQLite) or "
                          "postgresql://user@host:port/database")
    userinfo, at, _ = rest.partition("@")
    if at and ":" in userinfo:
        raise ConfigError("database_url must not hold a password: "
                          "set CHAT_SECRET_DATABASE_PASSWORD or database_password "
                          "in the secrets file")
    if "password=" in rest:
        raise ConfigError("database_url must not hold a password: "
                          "set CHAT_SECRET_DATABASE_PASSWORD")


def _decode_secret(name: str, text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ConfigError(f"secret {name!r} is not base64") from None
    if len(raw) != SECRET_BYTES:
        raise ConfigError(f"secret {name!r} must be {SECRET_BYTES} bytes")
    return raw


def _load_secrets(s: Settings, env: Mapping[str, str]) -> Secrets:
    found: dict[str, bytes] = {}
    path = s.data_path / s.secrets_file
    from_file: dict[str, Any] = {}
    if path.exists():
        from_file = _read_toml(path)
    for name in SECRET_NAMES:
        env_key = "CHAT_SECRET_" + name.upper()
        if env_key in env:
            found[name] = _decode_secret(name, env[env_key])
        elif name in from_file:
            found[name] = _decode_secret(name, str(from_file[name]))
    missing = [n for n in SECRET_NAMES if n not in found]
    if missing and s.generate_secrets:
        generated = {n: _secrets.token_bytes(SECRET_BYTES) for n in missing}
        _append_secrets_file(path, generated)
        found.update(generated)
        missing = []
    if missing:
        keys = ", ".join("CHAT_SECRET_" + n.upper() for n in missing)
        raise ConfigError(f"missing secrets: set {keys} or provide them in {path}")
    db_password = env.get("CHAT_SECRET_DATABASE_PASSWORD",
                          str(from_file.get("database_password", "")))
    redis_password = env.get("CHAT_SECRET_REDIS_PASSWORD",
                             str(from_file.get("redis_password", "")))
    return Secrets(**found, database_password=db_password, redis_password=redis_password)


def _append_secrets_file(path: Path, new: Mapping[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = [
        f'{name} = "{base64.urlsafe_b64encode(value).decode().rstrip("=")}"\n'
        for name, value in new.items()
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as fh:
        if fh.tell() == 0:
            fh.write("# Generated on first run. Keep private; back up with the database.\n")
        fh.writelines(lines)
    os.chmod(path, 0o600)
