"""The Python reference client: docs/protocol.md, executable.

One :class:`ReferenceClient` holds one Socket.IO connection to ``/youth``,
``/staff`` or ``/liaison`` and any number of conversations on it (a youth has
one, a counsellor up to its capacity, a liaison the one its invite opens). It
does what the browser pages do: a fresh ``crypto_kx`` key pair per
conversation, one box per other roster member, ``seq`` kept per sender, replay
and gap rules, cumulative ``delivered`` acks, re-encryption on ``stale_epoch``,
and ``resume`` after a dropped transport. Tests and the load
generator drive it; it is also meant to be read as documentation.

Ordering. python-socketio runs each incoming event in its own task, and the
server may emit events before or after the ack of the call that caused them
(e.g. re-sent boxes around a ``resume`` ack). So every event handler changes
state synchronously before its first ``await``, events for a conversation not
yet registered are held briefly (``_orphans``), and boxes for an epoch whose
roster has not arrived yet wait for it (``Conversation.pending``).

Continuity and escalation (protocol.md, "Continuity" and "Liaison namespace"):
a youth may start with a return passphrase and keeps the last ``return_code``
in memory; a counsellor offers returns, transfers, refers (sending the card
E2E) and invites liaisons, checking each ``join_request``'s MAC with the invite
secret it kept and introducing the liaison to the youth over E2E (``intro``)
before admitting; the youth consents only to a ``consent_request`` whose key
matches such an introduction; the liaison joins with the secret from the link.

Re-attach (protocol.md, "Re-attach after a reload"): a counsellor client that
stands for a reloaded console (no keys, no resume secrets) reads ``seats``
and calls :meth:`ReferenceClient.reattach`; a youth or liaison client learns
from the roster push which of its seqs were dropped unopened
(``Conversation.undelivered``) and sends them again with
:meth:`ReferenceClient.resend_undelivered`, as the pages do by themselves.

Nothing here logs; reprs hide plaintext, resume secrets, invite secrets and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import socketio

from chatserver.crypto import e2e, handover
from chatserver.crypto.tokens import b64d, b64e
from chatserver.queue import view as queue_view

EVENTS = ("queue", "roster", "box", "typing", "state", "duty", "ops",
          # continuity and escalation
          "return_code", "choose", "consent_request", "joined", "join_declined",
          "join_request", "transfer_offer", "transfer_declined", "consent_declined",
          "presence", "partners_changed", "queue_delta", "seats")
LIAISON_NS = "/liaison"
ROSTER_EPOCHS_KEPT = 16  # late boxes of a few older epochs must still open
PENDING_MAX = 64  # boxes held per conversation while waiting for their roster
ORPHANS_MAX = 64  # events held for conversations whose call ack is still in flight
STALE_EPOCH_RETRIES = 3
SENT_KEPT = 64  # our last sent plaintexts per conversation, to re-send after a re-attach
SESSION_COOKIE = "__Host-session"
# Refusals a reconnect waits out: the transport is not there (yet), or the
# node cannot reach the shared live state for a moment.
PASSING_FAILURES = frozenset({"connect_failed", "not_connected", "unavailable"})


class CallFailed(Exception):
    """The server answered ``{"ok": false, "error": code, "info"?}``."""

    def __init__(self, code: str, info: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.info = dict(info or {})


class RefusedLocally(Exception):
    """The client itself refused to do something its page must not do (e.g.
    consent to a liaison nobody introduced, admit a request whose MAC did not
    verify). Nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Received:
    """One decrypted message, with the metadata the server also saw."""

    conversation: str
    sender: str  # member id ("from" on the wire)
    role: str
    seq: int
    epoch: int
    body: dict[str, Any] = field(repr=False)  # the parsed plaintext object; never in a repr

    @property
    def type(self) -> str:
        """``msg``, ``card``, ``intro``, ... (protocol.md, "Plaintext")."""
        return str(self.body.get("type", ""))

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass(frozen=True, slots=True)
class Invite:
    """A liaison invite this counsellor created. Only ``invite_id`` went to the
    server; the secret travels out of band in the invite code, which the
    liaison pastes into /join (never in a URL: browsers record those)."""

    conversation: str
    role: str
    secret: bytes = field(repr=False)
    expires_at: int = 0

    @property
    def invite_id(self) -> bytes:
        return e2e.invite_id(self.secret)

    @property
    def mac_key(self) -> bytes:
        return e2e.invite_mac_key(self.secret)

    @property
    def fragment(self) -> str:
        """The invite code (see :func:`invite_fragment`)."""
        return invite_fragment(self.secret, self.conversation)


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A ``join_request`` as the counsellor's page judged it."""

    conversation: str
    request: str
    role: str
    kx_pk: bytes
    verified: bool  # the MAC matched one of our outstanding invites for this conversation
    comparison_code: str | None = None  # to read to the liaison by phone


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A ``consent_request`` as the youth's page received it."""

    conversation: str
    request: str
    role: str
    kx_pk: bytes


@dataclass(slots=True)
class _Joining:
    """A liaison's state between ``join`` and ``joined``/``join_declined``."""

    keys: e2e.KxKeyPair
    mac_key: bytes = field(repr=False)
    invite_id: bytes
    request: str
    role: str


@dataclass(frozen=True, slots=True)
class Gap:
    """``seq`` values from ``sender`` that never arrived (inclusive)."""

    conversation: str
    sender: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class RosterEntry:
    member: str
    role: str
    alias: str
    kx_pk: bytes
    seq: int


@dataclass(frozen=True, slots=True)
class RosterView:
    """One epoch of a roster exactly as this client was told it."""

    epoch: int
    members: Mapping[str, RosterEntry]
    hash: bytes


@dataclass(eq=False)
class Conversation:
    """What this client knows about one conversation it is a member of."""

    id: str
    member: str
    resume_secret: str = field(repr=False)
    keys: e2e.KxKeyPair
    state: str
    role: str
    epoch: int = 0
    rosters: dict[int, RosterView] = field(default_factory=dict, repr=False)
    receive: e2e.ReceiveState = field(default_factory=e2e.ReceiveState, repr=False)
    sent_seq: int = 0  # our last seq the server accepted
    position: int | None = None
    eta_secs: int | None = None
    ended_reason: str | None = None
    typing: dict[str, bool] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list, repr=False)
    ack_due: dict[str, int] = field(default_factory=dict, repr=False)
    sessions: dict[bytes, e2e.SessionKeys] = field(default_factory=dict, repr=False)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    ack_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # What we sent lately, by seq, in memory only (as a page's log holds it):
    # a counsellor's console that re-attaches never got some of it.
    sent: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    # The seqs of ours the server dropped unopened at a re-attach (inclusive).
    undelivered: tuple[int, int] | None = None

    @property
    def roster(self) -> RosterView:
        return self.rosters[self.epoch]

    def session(self, peer_pk: bytes) -> e2e.SessionKeys:
        if peer_pk not in self.sessions:
            self.sessions[peer_pk] = e2e.session_keys(self.keys, peer_pk)
        return self.sessions[peer_pk]

    def wipe(self) -> None:
        self.keys.wipe()
        self.sessions.clear()
        self.pending.clear()
        self.sent.clear()


@dataclass(frozen=True, slots=True)
class StaffLogin:
    """Result of ``POST /staff/api/login``: the cookie header and CSRF token."""

    cookie: str = field(repr=False)
    csrf: str = field(repr=False)
    role: str
    alias: str


async def staff_login(base_url: str, username: str, password: str, totp: str,
                      origin: str | None = None) -> StaffLogin:
    """Log in over HTTP and return what ``connect(..., "/staff", headers=...)`` needs.

    The ``__Host-`` cookie is ``Secure``, so a cookie jar would not send it over
    plain http in tests; we read it from the response and pass it as a header.
    """
    headers = {"Origin": origin or _origin(base_url)}
    body = {"username": username, "password": password, "totp": totp}
    async with aiohttp.ClientSession() as http, http.post(
            base_url.rstrip("/") + "/staff/api/login", json=body, headers=headers) as resp:
        reply = await resp.json()
        if not reply.get("ok"):
            raise CallFailed(str(reply.get("error", "internal")), reply.get("info"))
        morsel = resp.cookies.get(SESSION_COOKIE)
        if morsel is None:
            raise CallFailed("session_required")
        return StaffLogin(cookie=f"{SESSION_COOKIE}={morsel.value}", csrf=reply["csrf"],
                          role=reply.get("role", ""), alias=reply.get("alias", ""))


def invite_fragment(secret: bytes, conversation: str) -> str:
    """The invite code: ``base64url(secret) "." conversation-id-hex``.

    The liaison's MAC covers the conversation id (protocol.md), so the liaison
    must know it before ``join``; a code holding only the secret would not let
    it compute the MAC. The code never reaches the server. (The name is from
    when the code was a link's fragment; a hand-made ``/join#<code>`` still
    works.)"""
    return f"{b64e(secret)}.{_hex_id(conversation)}"


def parse_invite_fragment(fragment: str) -> tuple[bytes, str]:
    """``(secret, conversation)`` from an invite code (a leading ``#`` is
    dropped); ValueError if malformed."""
    text = fragment.lstrip("#")
    secret_text, _, conversation = text.partition(".")
    secret = b64d(secret_text)
    if len(secret) != e2e.INVITE_SECRET_BYTES:
        raise ValueError("invite secret must be 32 bytes")
    return secret, _hex_id(conversation)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ReferenceClient:
    """A youth, staff or liaison participant speaking docs/protocol.md."""

    def __init__(self, *, call_timeout: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 local_address: str | None = None) -> None:
        self.call_timeout = call_timeout
        # The address to connect from (tests: a youth on a loopback address of
        # its own, to look for it in every file afterwards); None: any.
        self.local_address = local_address
        self._clock = clock
        self._sio: socketio.AsyncClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self.namespace = ""
        self.conversations: dict[str, Conversation] = {}
        self.inbox: asyncio.Queue[Received] = asyncio.Queue()
        self.gaps: list[Gap] = []
        self.undecryptable = 0  # boxes shown as "could not be verified"
        self.replays = 0
        self.bad_rosters = 0
        self.queue: dict[str, Any] = {}  # last `queue` payload; staff: deltas applied
        self.queue_changes = 0  # staff: `queue_delta`s applied
        self.queue_resyncs = 0  # staff: `queue_sync` calls after a missed delta
        self.drop_queue_deltas = 0  # tests: ignore this many deltas, as if lost
        self._queue_syncing = False
        self.duty_state: dict[str, Any] = {}  # last `duty` payload (staff)
        self.ops: dict[str, Any] = {}  # last `ops` payload (operators)
        self.partners_version: int | None = None  # last `partners_changed` (staff)
        # Continuity and escalation: what each page keeps in memory.
        self.return_codes: dict[str, dict[str, Any]] = {}  # youth: last return_code
        self.choices: dict[str, int] = {}  # youth: `choose` events per conversation
        self.consent_requests: dict[str, dict[str, ConsentRequest]] = {}  # youth
        self.intros: dict[str, dict[str, tuple[str, bytes]]] = {}  # youth: request -> (role, pk)
        self.invites: dict[bytes, Invite] = {}  # counsellor: outstanding, by invite id
        self.join_requests: dict[str, dict[str, JoinRequest]] = {}  # counsellor
        self.transfer_offers: dict[str, dict[str, Any]] = {}  # counsellor: offered to us
        self.transfer_declines: list[dict[str, Any]] = []  # counsellor: our offers declined
        self.consent_declines: list[dict[str, Any]] = []  # counsellor
        self.presence: dict[str, dict[str, Any]] = {}  # last `presence` per chat
        self.seats: list[dict[str, Any]] | None = None  # counsellor: last `seats` (on connect)
        self.reattached: dict[str, str] = {}  # conversation -> member that re-attached last
        self.handover_keys: e2e.KxKeyPair | None = None  # counsellor: this console's key
        self.join_declined: set[str] = set()  # liaison: conversations that turned us away
        self._joining: dict[str, _Joining] = {}  # liaison: conversation -> pending seat
        self._early_joined: list[dict[str, Any]] = []  # `joined` ahead of its join ack
        self._invite_links: dict[str, tuple[bytes, bytes]] = {}  # liaison: (mac key, id)
        self._orphans: list[tuple[str, dict[str, Any]]] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect_error: Any = None

    # ------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._sio.connected

    @property
    def sid(self) -> str | None:
        """This transport's socket.io session id; a node of a cluster names
        itself in it (``<node_id>.<random>``, docs/operations.md)."""
        if self._sio is None or not self._sio.connected:
            return None
        sid = self._sio.get_sid(self.namespace)
        return None if sid is None else str(sid)

    async def connect(self, url: str, namespace: str,
                      headers: Mapping[str, str] | None = None) -> None:
        """Open a WebSocket to ``url`` (the server's base URL) on ``/youth`` or
        ``/staff``. ``Origin`` defaults to the URL's origin; staff pass
        ``{"Cookie": login.cookie}``. A refusal raises ``CallFailed(code)``."""
        if self.connected:
            raise RuntimeError("already connected; disconnect() first")
        await self.disconnect()  # release a transport the server closed
        # A fresh AsyncClient per transport: automatic reconnection is off because
        # a new transport must ``resume`` explicitly (it proves the resume secret).
        # Our own HTTP session, so a refused connect does not leak it; no SIGINT
        # handler, since tests and the load generator own the process.
        connector = (aiohttp.TCPConnector(local_addr=(self.local_address, 0))
                     if self.local_address else None)
        http = aiohttp.ClientSession(connector=connector)
        sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False,
                                   handle_sigint=False, http_session=http)
        for event in EVENTS:
            sio.on(event, self._handler(event), namespace=namespace)
        sio.on("connect_error", self._on_connect_error, namespace=namespace)
        self.namespace, self._sio, self._http, self._connect_error = namespace, sio, http, None
        all_headers = {"Origin": _origin(url), **(headers or {})}
        try:
            await sio.connect(url, headers=all_headers, transports=["websocket"],
                              namespaces=[namespace], wait_timeout=self.call_timeout)
        except socketio.exceptions.ConnectionError as exc:
            await self.disconnect()
            error = self._connect_error
            info = error.get("data") if isinstance(error, dict) else None
            raise CallFailed(_refusal_code(error), info if isinstance(info, dict) else None) \
                from exc

    async def disconnect(self) -> None:
        """Drop the transport but keep every conversation, for ``resume``."""
        sio, self._sio = self._sio, None
        http, self._http = self._http, None
        if sio is not None:
            await sio.disconnect()
        if http is not None:
            await http.close()

    async def close(self) -> None:
        """Disconnect, stop background work and wipe every key."""
        await self.disconnect()
        for task in list(self._tasks):
            task.cancel()
        for conv in self.conversations.values():
            conv.wipe()
        for joining in self._joining.values():
            joining.keys.wipe()
        self._joining.clear()
        self.invites.clear()
        self._invite_links.clear()
        if self.handover_keys is not None:
            self.handover_keys.wipe()

    def _on_connect_error(self, data: Any) -> None:
        self._connect_error = data

    # ------------------------------------------------------------------ calls

    async def call(self, event: str, data: Mapping[str, Any] | None = None, *,
                   check: bool = True) -> dict[str, Any]:
        """One call: emit with an ack and return the reply object. With ``check``
        a failure reply raises :class:`CallFailed`; a missing ack raises TimeoutError."""
        if self._sio is None:
            raise CallFailed("not_connected")
        try:
            reply = await self._sio.call(event, dict(data or {}), namespace=self.namespace,
                                         timeout=self.call_timeout)
        except socketio.exceptions.TimeoutError:
            raise TimeoutError(f"no ack for {event!r}") from None
        if not isinstance(reply, dict):
            raise CallFailed("internal")
        if check and not reply.get("ok"):
            raise CallFailed(str(reply.get("error", "internal")), reply.get("info"))
        return reply

    async def status(self) -> dict[str, Any]:
        return await self.call("status", {})

    async def start(self, profile: Mapping[str, Any] | None = None, *,
                    passphrase: str | None = None,
                    page_language: str | None = None) -> dict[str, Any]:
        """Youth: join the queue with a fresh key pair for this conversation.

        With ``passphrase`` (a return passphrase from an earlier conversation)
        the reply adds ``returning``: ``"queued"`` or ``"choose"`` (then call
        :meth:`choose`). ``page_language``: the catalog the page was shown in."""
        keys = e2e.KxKeyPair.generate()
        payload: dict[str, Any] = {"kx_pk": b64e(keys.public_key)}
        if profile is not None:
            payload["profile"] = dict(profile)
        if page_language is not None:
            payload["page_language"] = page_language
        if passphrase is not None:
            payload["passphrase"] = passphrase
        try:
            reply = await self.call("start", payload)
        except BaseException:
            keys.wipe()
            raise
        conv = Conversation(id=reply["conversation"], member=reply["member"],
                            resume_secret=reply["resume"], keys=keys, state="waiting",
                            role="youth", position=reply.get("position"),
                            eta_secs=reply.get("eta_secs"))
        # Epoch 0 is the youth alone; the server sends no roster for it.
        own = {"member": conv.member, "role": "youth", "alias": "",
               "kx_pk": b64e(keys.public_key), "seq": 0}
        self._register(conv, 0, [own])
        return reply

    async def choose(self, conversation: str, wait: bool) -> dict[str, Any]:
        """Returning youth: keep waiting for their own counsellor, or anyone now."""
        reply = await self.call("choose", {"conversation": conversation, "wait": wait})
        conv = self.conversations.get(conversation)
        if conv is not None:
            conv.position, conv.eta_secs = reply.get("position"), reply.get("eta_secs")
        return reply

    async def consent(self, conversation: str, request: str, accept: bool) -> dict[str, Any]:
        """Youth: let a liaison in, or not. Accepting requires an E2E ``intro``
        from a counsellor with the same request, role and key as the server's
        ``consent_request``: the server cannot slip in a key of its own."""
        pending = self.consent_requests.get(conversation, {}).get(request)
        if accept:
            if pending is None:
                raise RefusedLocally("unknown_request")
            intro = self.intros.get(conversation, {}).get(request)
            if intro is None:
                raise RefusedLocally("no_intro")
            if intro != (pending.role, pending.kx_pk):
                raise RefusedLocally("intro_mismatch")
        reply = await self.call("consent", {"conversation": conversation, "request": request,
                                            "accept": accept})
        self.consent_requests.get(conversation, {}).pop(request, None)
        conv = self.conversations.get(conversation)
        if conv is not None and accept and "members" in reply:
            self._apply_roster(conv, reply.get("epoch"), reply.get("members"))
            self._notify()
        return reply

    async def remove_member(self, conversation: str, member: str) -> dict[str, Any]:
        """Youth or counsellor: remove a liaison."""
        return await self.call("remove_member", {"conversation": conversation,
                                                 "member": member})

    async def claim(self, conversation: str, *, offline_ok: bool = False) -> dict[str, Any]:
        """Counsellor: take one waiting conversation from the queue (one whose
        youth is offline only with ``offline_ok``)."""
        payload: dict[str, Any] = {"conversation": conversation}
        if offline_ok:
            payload["offline_ok"] = True
        return await self._join("claim", payload)

    async def take_next(self) -> dict[str, Any]:
        """Counsellor: take whoever has waited longest (urgent first)."""
        return await self._join("take_next", {})

    async def _join(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        keys = e2e.KxKeyPair.generate()
        try:
            reply = await self.call(event, {**payload, "kx_pk": b64e(keys.public_key)})
        except BaseException:
            keys.wipe()
            raise
        conv = Conversation(id=reply["conversation"], member=reply["member"],
                            resume_secret=reply["resume"], keys=keys, state=reply["state"],
                            role="counsellor")
        self._register(conv, reply["epoch"], reply["members"])
        return reply

    async def duty(self, on: bool) -> dict[str, Any]:
        return await self.call("duty", {"on": on})

    async def reattach(self, conversation: str) -> dict[str, Any]:
        """Counsellor, on a new console that lost every key (a reload): take
        this account's seat back with a fresh key pair. The conversation's
        earlier messages are gone for us; our seq numbering continues from
        the seat's (``seq`` in the reply)."""
        keys = e2e.KxKeyPair.generate()
        try:
            reply = await self.call("reattach", {"conversation": conversation,
                                                 "kx_pk": b64e(keys.public_key)})
        except BaseException:
            keys.wipe()
            raise
        old = self.conversations.pop(str(reply["conversation"]), None)
        if old is not None:
            old.wipe()
        conv = Conversation(id=reply["conversation"], member=reply["member"],
                            resume_secret=reply["resume"], keys=keys, state=reply["state"],
                            role="counsellor", sent_seq=int(reply["seq"]))
        self._register(conv, reply["epoch"], reply["members"])
        return reply

    async def resend_undelivered(self, conversation: str) -> list[int]:
        """Youth or liaison: send again, under the current epoch, what the
        server dropped unopened when our counsellor re-attached; returns the
        new seqs. What we no longer hold cannot be sent again."""
        conv = self.conversations[conversation]
        span, conv.undelivered = conv.undelivered, None
        if span is None:
            return []
        bodies = [conv.sent[seq] for seq in range(span[0], span[1] + 1) if seq in conv.sent]
        return [await self.send_message(conversation, body) for body in bodies]

    # ------------------------------------------------ counsellor: escalation

    async def offer_return(self, conversation: str) -> dict[str, Any]:
        """Counsellor: the youth's page gets a one-time return passphrase
        (``return_code``); this page only learns that one was issued."""
        return await self.call("offer_return", {"conversation": conversation})

    async def colleagues(self) -> list[dict[str, Any]]:
        reply = await self.call("colleagues", {})
        return list(reply["colleagues"])

    async def transfer(self, conversation: str, to: int, *,
                       handover_to: str | None = None,
                       handover_body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Counsellor: offer the conversation to colleague ``to`` (a ``staff`` id),
        with a handover sealed to ``handover_to`` (the colleague's ``handover_pk``)
        when given."""
        payload: dict[str, Any] = {"conversation": conversation, "to": to}
        if handover_to is not None and handover_body is not None:
            own = self.handover_keys
            if own is None:
                raise RuntimeError("register_handover_key() first")
            nonce, ct = handover.seal(own, b64d(handover_to), bytes.fromhex(conversation),
                                      handover_body)
            payload["handover"] = {"from_pk": b64e(own.public_key), "to_pk": handover_to,
                                   "nonce": b64e(nonce), "ct": b64e(ct)}
        return await self.call("transfer", payload)

    async def register_handover_key(self) -> str:
        """Counsellor: a fresh handover key pair for this connection; its public
        half goes to the server (colleagues learn it from ``colleagues``)."""
        if self.handover_keys is not None:
            self.handover_keys.wipe()
        self.handover_keys = e2e.KxKeyPair.generate()
        pk = b64e(self.handover_keys.public_key)
        await self.call("handover_key", {"kx_pk": pk})
        return pk

    def open_handover(self, conversation: str, box: Mapping[str, Any]) -> dict[str, Any]:
        """Open the ``handover`` of a transfer_answer reply with this console's key."""
        if self.handover_keys is None:
            raise e2e.KeyWiped("no handover key")
        return handover.open_(self.handover_keys, b64d(str(box["from_pk"])),
                              bytes.fromhex(conversation), b64d(str(box["nonce"])),
                              b64d(str(box["ct"])))

    async def transfer_answer(self, conversation: str, accept: bool) -> dict[str, Any]:
        """Counsellor offered a transfer: accept (with a fresh key pair; we get a
        seat like a claim) or decline."""
        self.transfer_offers.pop(conversation, None)
        if not accept:
            return await self.call("transfer_answer", {"conversation": conversation,
                                                       "accept": False})
        return await self._join("transfer_answer", {"conversation": conversation,
                                                    "accept": True})

    async def invite_create(self, conversation: str, role: str) -> Invite:
        """Counsellor: a liaison invite. The secret stays here (and in the link,
        ``invite.fragment``); the server gets only its id."""
        invite = Invite(conversation=conversation, role=role, secret=e2e.new_invite_secret())
        reply = await self.call("invite_create", {"conversation": conversation,
                                                  "invite": b64e(invite.invite_id),
                                                  "role": role})
        invite = Invite(conversation, role, invite.secret, int(reply.get("expires_at", 0)))
        self.invites[invite.invite_id] = invite
        return invite

    async def admit(self, conversation: str, request: str, accept: bool) -> dict[str, Any]:
        """Counsellor: pass a verified join request on to the youth (first
        introducing the liaison over E2E), or turn it away."""
        pending = self.join_requests.get(conversation, {}).get(request)
        if accept:
            if pending is None or not pending.verified:
                raise RefusedLocally("unverified_request")
            await self.send_message(conversation, {
                "type": "intro", "request": request, "role": pending.role,
                "kx_pk": b64e(pending.kx_pk), "sent_at": self._now_ms()})
        reply = await self.call("admit", {"conversation": conversation, "request": request,
                                          "accept": accept})
        self.join_requests.get(conversation, {}).pop(request, None)
        return reply

    async def partners(self, query: str, kind: str | None = None) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"query": query}
        if kind is not None:
            payload["kind"] = kind
        reply = await self.call("partners", payload)
        return list(reply["partners"])

    async def refer(self, conversation: str, partner: str, *, send_card: bool = True
                    ) -> dict[str, Any]:
        """Counsellor: record a referral, then send the partner's card E2E."""
        reply = await self.call("refer", {"conversation": conversation, "partner": partner})
        if send_card:
            await self.send_message(conversation, {"type": "card", "card": reply["partner"],
                                                   "sent_at": self._now_ms()})
        return reply

    async def tag(self, conversation: str, reasons: list[str]) -> dict[str, Any]:
        return await self.call("tag", {"conversation": conversation, "reasons": list(reasons)})

    # ----------------------------------------------------------------- liaison

    async def join(self, fragment: str) -> dict[str, Any]:
        """Liaison: present the invite from a link fragment with a fresh key
        pair. The reply is ``{conversation, request, role}``; the seat comes
        later with ``joined`` (or ``join_declined``)."""
        secret, conversation = parse_invite_fragment(fragment)
        keys = e2e.KxKeyPair.generate()
        mac_key, inv_id = e2e.invite_mac_key(secret), e2e.invite_id(secret)
        mac = e2e.invite_mac(mac_key, bytes.fromhex(conversation), keys.public_key)
        try:
            reply = await self.call("join", {"invite": b64e(inv_id),
                                             "kx_pk": b64e(keys.public_key),
                                             "mac": b64e(mac)})
        except BaseException:
            keys.wipe()
            raise
        conv_id = str(reply["conversation"])
        self._joining[conv_id] = _Joining(keys, mac_key, inv_id, str(reply["request"]),
                                          str(reply["role"]))
        early = [d for d in self._early_joined if d.get("conversation") == conv_id]
        self._early_joined = [d for d in self._early_joined if d.get("conversation") != conv_id]
        for data in early:
            self._on_joined(data)
        self._notify()
        return reply

    def comparison_codes(self, conversation: str) -> dict[str, str]:
        """Liaison: the code for each counsellor in the roster (by member id), to
        compare with what the counsellor reads out."""
        link = self._invite_links.get(conversation)
        conv = self.conversations.get(conversation)
        if link is None or conv is None:
            return {}
        mac_key, inv_id = link
        return {m.member: e2e.comparison_code(mac_key, inv_id, bytes.fromhex(conv.id),
                                              conv.keys.public_key, m.kx_pk)
                for m in conv.roster.members.values() if m.role == "counsellor"}

    async def resume(self, conversation: str) -> dict[str, Any]:
        """After ``connect`` on a new transport: reclaim our seat. The reply's
        roster also tells us our own last accepted ``seq`` (an ack lost in the
        drop would otherwise make the next send ``replayed``)."""
        conv = self.conversations[conversation]
        reply = await self.call("resume", {"conversation": conv.id, "member": conv.member,
                                           "resume": conv.resume_secret})
        conv.state, conv.role = reply["state"], reply["role"]
        conv.position, conv.eta_secs = reply.get("position"), reply.get("eta_secs")
        self._apply_roster(conv, reply["epoch"], reply["members"])
        for m in reply["members"]:
            if m.get("member") == conv.member and isinstance(m.get("seq"), int):
                conv.sent_seq = max(conv.sent_seq, m["seq"])
        self._notify()
        return reply

    async def reconnect(self, url: str, headers: Mapping[str, str] | None = None, *,
                        within_secs: float = 30.0) -> dict[str, dict[str, Any]]:
        """After the transport dropped (its server went away): connect to ``url``
        again on the same namespace — behind a load balancer, to whichever node
        answers — and ``resume`` every conversation not ended, as the pages do.
        A try that fails for a reason that passes (the connection refused or
        cut, no ack, the live state briefly ``unavailable``) is repeated after
        a growing pause until ``within_secs`` have passed; any other refusal
        (``bad_resume``: the seat is gone) is raised at once. Returns each
        conversation's resume reply."""
        deadline = time.monotonic() + within_secs
        pause = 0.05
        while True:
            try:
                if not self.connected:
                    await self.connect(url, self.namespace, headers)
                replies = {}
                for conv in [c for c in self.conversations.values() if c.state != "ended"]:
                    replies[conv.id] = await self.resume(conv.id)
                return replies
            except (CallFailed, TimeoutError, OSError,
                    socketio.exceptions.SocketIOError) as exc:
                if isinstance(exc, CallFailed) and exc.code not in PASSING_FAILURES:
                    raise
                if time.monotonic() > deadline:
                    raise
            await self.disconnect()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def send_text(self, conversation: str, text: str) -> int:
        """Encrypt ``text`` once per other member and send it; returns the seq."""
        return await self.send_message(conversation, {"type": "msg", "text": text,
                                                      "sent_at": self._now_ms()})

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def send_message(self, conversation: str, body: Mapping[str, Any]) -> int:
        """Encrypt one plaintext object (``msg``, ``card``, ``intro``) once per
        other member and send it; returns the seq."""
        conv = self.conversations[conversation]
        if conv.state == "ended":
            raise CallFailed("wrong_state")  # and the keys are already wiped
        async with conv.send_lock:  # one seq at a time, in order
            seq = conv.sent_seq + 1
            for _ in range(STALE_EPOCH_RETRIES):
                view = conv.roster
                reply = await self.call("send", {
                    "conversation": conv.id, "epoch": view.epoch, "seq": seq,
                    "boxes": self._seal_for_all(conv, view, seq, body)}, check=False)
                if reply.get("ok"):
                    conv.sent_seq = seq
                    conv.sent[seq] = dict(body)
                    for old in sorted(conv.sent)[:-SENT_KEPT]:
                        del conv.sent[old]
                    return seq
                if reply.get("error") != "stale_epoch":
                    raise CallFailed(str(reply.get("error", "internal")), reply.get("info"))
                # The roster changed under us: wait for it, re-encrypt, same seq.
                await self._wait_newer_epoch(conv, view.epoch)
            raise CallFailed("stale_epoch")

    async def _wait_newer_epoch(self, conv: Conversation, epoch: int) -> None:
        try:
            await self.wait_for(lambda: conv.epoch > epoch)
        except TimeoutError:
            raise CallFailed("stale_epoch") from None

    def _seal_for_all(self, conv: Conversation, view: RosterView, seq: int,
                      body: Mapping[str, Any]) -> list[dict[str, str]]:
        own_pk = conv.keys.public_key
        boxes = []
        for other in view.members.values():
            if other.member == conv.member:
                continue
            ad = e2e.associated_data(bytes.fromhex(conv.id), view.epoch, view.hash,
                                     own_pk, other.kx_pk, seq)
            nonce, ct = e2e.seal_box(conv.session(other.kx_pk).tx, ad, body)
            boxes.append({"to": other.member, "nonce": b64e(nonce), "ct": b64e(ct)})
        return boxes

    async def send_typing(self, conversation: str, active: bool) -> dict[str, Any]:
        return await self.call("typing", {"conversation": conversation, "active": active})

    async def pause(self, paused: bool, conversation: str | None = None) -> dict[str, Any]:
        conv = self._only(conversation)
        reply = await self.call("pause", {"conversation": conv.id, "paused": paused})
        conv.state = reply["state"]
        return reply

    async def leave(self, reason: str = "done", conversation: str | None = None
                    ) -> dict[str, Any]:
        """Youth: end the conversation (``done``, ``panic`` for the quick exit,
        ``closed`` for a page that went away without it).
        Liaison: leave it (also while still waiting to be let in)."""
        if self.namespace == LIAISON_NS:
            return await self._liaison_leave(conversation)
        conv = self._only(conversation)
        reply = await self.call("leave", {"conversation": conv.id, "reason": reason})
        why = {"panic": "panic_exit", "closed": "page_closed"}.get(reason, "youth_left")
        self._ended(conv, why)
        return reply

    async def end(self, conversation: str) -> dict[str, Any]:
        """Counsellor: end the conversation for everyone."""
        reply = await self.call("end", {"conversation": conversation})
        self._ended(self.conversations[conversation], "done")
        return reply

    async def _liaison_leave(self, conversation: str | None) -> dict[str, Any]:
        if conversation is None:
            live = [c.id for c in self.conversations.values() if c.state != "ended"]
            live += list(self._joining)  # still waiting to be let in
            if len(live) != 1:
                raise ValueError("name the conversation")
            conversation = live[0]
        reply = await self.call("leave", {"conversation": conversation})
        joining = self._joining.pop(conversation, None)
        if joining is not None:
            joining.keys.wipe()
        if conversation in self.conversations:
            self._ended(self.conversations[conversation], "left")
        return reply

    def _only(self, conversation: str | None) -> Conversation:
        if conversation is not None:
            return self.conversations[conversation]
        live = [c for c in self.conversations.values() if c.state != "ended"]
        if len(live) != 1:
            raise ValueError("name the conversation")
        return live[0]

    # ---------------------------------------------------------------- waiting

    async def next_message(self, wait_secs: float | None = None) -> Received:
        """The next decrypted message; TimeoutError after ``wait_secs``."""
        return await asyncio.wait_for(self.inbox.get(), self._secs(wait_secs))

    async def wait_for(self, predicate: Callable[[], bool], wait_secs: float | None = None
                       ) -> None:
        """Wait until ``predicate()`` holds; it is re-checked after every event."""
        if predicate():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, self._secs(wait_secs))
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def _secs(self, wait_secs: float | None) -> float:
        return self.call_timeout if wait_secs is None else wait_secs

    def _notify(self) -> None:
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate():
                fut.set_result(None)

    # ----------------------------------------------------------------- events

    def _handler(self, event: str) -> Callable[[Any], Any]:
        method: Callable[[dict[str, Any]], None] = getattr(self, "_on_" + event)

        def handle(data: Any) -> None:
            # Synchronous on purpose: state changes in arrival order (module doc).
            if isinstance(data, dict):
                method(data)
                self._notify()
        return handle

    def _conv_for(self, event: str, data: dict[str, Any]) -> Conversation | None:
        conv = self.conversations.get(str(data.get("conversation")))
        if conv is None and len(self._orphans) < ORPHANS_MAX:
            self._orphans.append((event, data))
        return conv

    def _on_queue(self, data: dict[str, Any]) -> None:
        self.queue = data
        self._queue_syncing = False
        conv = self.conversations.get(str(data.get("conversation")))
        if conv is not None:  # the youth's own place; staff get a snapshot
            conv.position, conv.eta_secs = data.get("position"), data.get("eta_secs")

    def _on_queue_delta(self, data: dict[str, Any]) -> None:
        # Staff: the change from the view held to a newer one (docs/protocol.md,
        # "Queue views"). One that does not start from the view held is either
        # older than it (sent before a snapshot asked for since) or follows a
        # missed one: then the whole view is asked for again.
        if self.drop_queue_deltas > 0:
            self.drop_queue_deltas -= 1
            return
        try:
            self.queue = queue_view.apply(self.queue, data)
            self.queue_changes += 1
        except queue_view.Gap:
            if isinstance(data.get("v"), int) and data["v"] <= self.queue.get("v", -1):
                return
            self._queue_sync()
        except (KeyError, TypeError, ValueError):
            self._queue_sync()

    def _queue_sync(self) -> None:
        if self._queue_syncing:
            return
        self._queue_syncing = True
        self.queue_resyncs += 1

        async def sync() -> None:
            try:
                await self.call("queue_sync", {}, check=False)
            finally:
                self._queue_syncing = False
        task = asyncio.get_running_loop().create_task(sync())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_duty(self, data: dict[str, Any]) -> None:
        self.duty_state = data

    def _on_ops(self, data: dict[str, Any]) -> None:
        self.ops = data

    def _on_partners_changed(self, data: dict[str, Any]) -> None:
        # Staff: the partner directory's newest version; search again to see it.
        version = data.get("version")
        if isinstance(version, int) and not isinstance(version, bool):
            self.partners_version = version

    def _on_return_code(self, data: dict[str, Any]) -> None:
        # Youth: shown once by the page; only the last one is kept.
        self.return_codes[str(data.get("conversation"))] = data

    def _on_choose(self, data: dict[str, Any]) -> None:
        conv = str(data.get("conversation"))
        self.choices[conv] = self.choices.get(conv, 0) + 1

    def _on_consent_request(self, data: dict[str, Any]) -> None:
        try:
            req = ConsentRequest(conversation=_hex_id(data["conversation"]),
                                 request=_hex_id(data["request"]), role=str(data["role"]),
                                 kx_pk=b64d(data["kx_pk"]))
        except (KeyError, TypeError, ValueError):
            return
        self.consent_requests.setdefault(req.conversation, {})[req.request] = req

    def _on_join_request(self, data: dict[str, Any]) -> None:
        # Counsellor: check the MAC against every invite we made for this
        # conversation (the request does not say which one it used).
        try:
            conv_id, request = _hex_id(data["conversation"]), _hex_id(data["request"])
            role, kx_pk, mac = str(data["role"]), b64d(data["kx_pk"]), b64d(data["mac"])
        except (KeyError, TypeError, ValueError):
            return
        matched = next((inv for inv in self.invites.values()
                        if inv.conversation == conv_id and inv.role == role
                        and e2e.verify_invite_mac(inv.mac_key, bytes.fromhex(conv_id), kx_pk,
                                                  mac)), None)
        code = None
        conv = self.conversations.get(conv_id)
        if matched is not None:
            del self.invites[matched.invite_id]  # single use, on our side too
            if conv is not None and not conv.keys.wiped:
                code = e2e.comparison_code(matched.mac_key, matched.invite_id,
                                           bytes.fromhex(conv_id), kx_pk, conv.keys.public_key)
        self.join_requests.setdefault(conv_id, {})[request] = JoinRequest(
            conv_id, request, role, kx_pk, verified=matched is not None, comparison_code=code)

    def _on_joined(self, data: dict[str, Any]) -> None:
        conv_id = str(data.get("conversation"))
        joining = self._joining.pop(conv_id, None)
        if joining is None:
            if len(self._early_joined) < ORPHANS_MAX:
                self._early_joined.append(data)  # our join ack is still in flight
            return
        try:
            conv = Conversation(id=_hex_id(conv_id), member=_hex_id(data["member"]),
                                resume_secret=str(data["resume"]), keys=joining.keys,
                                state=str(data["state"]), role="liaison")
            self._register(conv, data["epoch"], data["members"])
        except (KeyError, TypeError, ValueError, e2e.E2EError):
            joining.keys.wipe()
            self.bad_rosters += 1
            return
        self._invite_links[conv_id] = (joining.mac_key, joining.invite_id)

    def _on_join_declined(self, data: dict[str, Any]) -> None:
        conv_id = str(data.get("conversation"))
        self.join_declined.add(conv_id)
        joining = self._joining.pop(conv_id, None)
        if joining is not None:
            joining.keys.wipe()

    def _on_presence(self, data: dict[str, Any]) -> None:
        self.presence[str(data.get("conversation"))] = data

    def _on_transfer_offer(self, data: dict[str, Any]) -> None:
        self.transfer_offers[str(data.get("conversation"))] = data

    def _on_transfer_declined(self, data: dict[str, Any]) -> None:
        self.transfer_declines.append(data)

    def _on_consent_declined(self, data: dict[str, Any]) -> None:
        self.consent_declines.append(data)

    def _on_typing(self, data: dict[str, Any]) -> None:
        conv = self._conv_for("typing", data)
        if conv is not None:
            conv.typing[str(data.get("from"))] = bool(data.get("active"))

    def _on_state(self, data: dict[str, Any]) -> None:
        conv = self._conv_for("state", data)
        if conv is None:
            return
        if data.get("state") == "ended":
            self._ended(conv, data.get("reason"))
        else:
            conv.state = str(data.get("state"))

    def _on_roster(self, data: dict[str, Any]) -> None:
        conv = self._conv_for("roster", data)
        if conv is not None:
            conv.state = str(data.get("state", conv.state))
            self._apply_roster(conv, data.get("epoch"), data.get("members"))
            if isinstance(data.get("reattached"), str):
                # A counsellor's console came back with a new key
                # (docs/protocol.md, "reattach"): what it had not acknowledged
                # of ours was dropped unopened.
                self.reattached[conv.id] = data["reattached"]
                span = data.get("undelivered")
                if isinstance(span, dict):
                    with contextlib.suppress(ValueError):
                        conv.undelivered = (_uint(span.get("first")), _uint(span.get("last")))

    def _on_seats(self, data: dict[str, Any]) -> None:
        seats = data.get("conversations")
        if isinstance(seats, list):
            self.seats = [dict(s) for s in seats if isinstance(s, dict)]

    def _on_box(self, data: dict[str, Any]) -> None:
        conv = self._conv_for("box", data)
        if conv is not None:
            self._receive(conv, data)

    # -------------------------------------------------------- roster and boxes

    def _register(self, conv: Conversation, epoch: int, members: Any) -> None:
        self._apply_roster(conv, epoch, members)
        if epoch not in conv.rosters:
            conv.wipe()
            raise e2e.E2EError("the server's roster is unusable")
        self.conversations[conv.id] = conv
        held = [(e, d) for e, d in self._orphans if d.get("conversation") == conv.id]
        self._orphans = [(e, d) for e, d in self._orphans if d.get("conversation") != conv.id]
        for event, data in held:
            getattr(self, "_on_" + event)(data)
        self._notify()

    def _apply_roster(self, conv: Conversation, epoch: Any, members: Any) -> None:
        try:
            view = _parse_roster(conv.id, epoch, members)
        except (KeyError, TypeError, ValueError):
            self.bad_rosters += 1
            return
        own = view.members.get(conv.member)
        if own is None or own.kx_pk != conv.keys.public_key:
            self.bad_rosters += 1  # not our roster, or our key was substituted
            return
        known = conv.rosters.get(view.epoch)
        if known is not None:
            if known.hash != view.hash:
                self.bad_rosters += 1  # two different rosters for one epoch: keep the first
            return
        conv.rosters[view.epoch] = view
        for old in sorted(conv.rosters)[:-ROSTER_EPOCHS_KEPT]:
            del conv.rosters[old]
        conv.epoch = max(conv.epoch, view.epoch)
        for entry in view.members.values():
            if entry.member != conv.member:
                conv.receive.learn(entry.member, entry.seq)
        waiting, conv.pending = conv.pending, []
        for box in waiting:
            self._receive(conv, box)

    def _receive(self, conv: Conversation, box: dict[str, Any]) -> None:
        try:
            sender, epoch, seq = str(box["from"]), _uint(box["epoch"]), _uint(box["seq"])
            nonce, ct = b64d(box["nonce"]), b64d(box["ct"])
        except (KeyError, TypeError, ValueError):
            self.undecryptable += 1
            return
        view = conv.rosters.get(epoch)
        if view is None and epoch > conv.epoch and len(conv.pending) < PENDING_MAX:
            conv.pending.append(box)  # its roster is still on the way
            return
        entry = view.members.get(sender) if view is not None else None
        if view is None or entry is None or sender == conv.member or box.get("to") != conv.member:
            self.undecryptable += 1
            return
        verdict = conv.receive.check(sender, seq)
        if verdict.kind == "replay":
            # Seen before (e.g. re-sent after resume because our ack was lost):
            # drop it, and repeat the cumulative ack so the server forgets it.
            self.replays += 1
            if conv.receive.last(sender):
                self._ack(conv, sender, conv.receive.last(sender))
            return
        try:
            ad = e2e.associated_data(bytes.fromhex(conv.id), epoch, view.hash, entry.kx_pk,
                                     conv.keys.public_key, seq)
            body = e2e.open_box(conv.session(entry.kx_pk).rx, ad, nonce, ct)
        except (e2e.E2EError, ValueError):
            # Never shown as text. The counter does not move: the seq of a box
            # that failed to authenticate is not trustworthy.
            self.undecryptable += 1
            return
        conv.receive.accept(sender, seq)
        if verdict.missing is not None:
            self.gaps.append(Gap(conv.id, sender, *verdict.missing))
        if body.get("type") == "intro" and entry.role == "counsellor":
            self._note_intro(conv.id, body)
        self.inbox.put_nowait(Received(conv.id, sender, entry.role, seq, epoch, body))
        self._ack(conv, sender, seq)

    def _note_intro(self, conversation: str, body: Mapping[str, Any]) -> None:
        """Youth: remember who a counsellor introduced, end to end, so that a
        ``consent_request`` can be checked against it."""
        try:
            request, role = _hex_id(body["request"]), str(body["role"])
            kx_pk = b64d(body["kx_pk"])
        except (KeyError, TypeError, ValueError):
            return
        if len(kx_pk) == e2e.KX_PK_BYTES:
            self.intros.setdefault(conversation, {})[request] = (role, kx_pk)

    def _ack(self, conv: Conversation, sender: str, seq: int) -> None:
        conv.ack_due[sender] = max(conv.ack_due.get(sender, 0), seq)
        task = asyncio.get_running_loop().create_task(self._flush_acks(conv))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_acks(self, conv: Conversation) -> None:
        # The lock keeps each sender's acks in increasing order on the wire.
        async with conv.ack_lock:
            due, conv.ack_due = conv.ack_due, {}
            for sender, seq in due.items():
                if self._sio is None:
                    return  # resent after resume, then acked again
                # Fire and forget: `delivered` is cumulative and idempotent.
                with contextlib.suppress(socketio.exceptions.SocketIOError):
                    await self._sio.emit("delivered", {"conversation": conv.id,
                                                       "from": sender, "seq": seq},
                                         namespace=self.namespace)

    def _ended(self, conv: Conversation, reason: Any) -> None:
        conv.state, conv.ended_reason = "ended", None if reason is None else str(reason)
        conv.wipe()  # as the browser does: no key outlives the conversation
        # Invites die with the conversation (the server revokes them too).
        for inv_id in [i for i, inv in self.invites.items() if inv.conversation == conv.id]:
            del self.invites[inv_id]
        self.join_requests.pop(conv.id, None)
        self.consent_requests.pop(conv.id, None)
        self.intros.pop(conv.id, None)
        self._invite_links.pop(conv.id, None)


def _parse_roster(conversation: str, epoch: Any, members: Any) -> RosterView:
    if not isinstance(epoch, int) or not isinstance(members, list):
        raise TypeError("roster")
    entries = {}
    for m in members:
        entry = RosterEntry(member=_hex_id(m["member"]), role=str(m["role"]),
                            alias=str(m.get("alias", "")), kx_pk=b64d(m["kx_pk"]),
                            seq=_uint(m["seq"]))
        entries[entry.member] = entry
    if len(entries) != len(members):
        raise ValueError("duplicate member")
    digest = e2e.roster_hash(
        bytes.fromhex(_hex_id(conversation)), epoch,
        [e2e.Member(bytes.fromhex(e.member), e.role, e.kx_pk) for e in entries.values()])
    return RosterView(epoch=epoch, members=entries, hash=digest)


def _hex_id(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 32 or value != value.lower():
        raise ValueError("id")
    bytes.fromhex(value)
    return value


def _uint(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("uint")
    return value


def _refusal_code(data: Any) -> str:
    """The code of a refused namespace connect (``{"message": code}``). A refusal
    below socket.io (engine.io's CORS check answers a foreign Origin with a bare
    HTTP 400) carries no code: ``connect_failed``."""
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return "connect_failed"
