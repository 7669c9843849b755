"""Both sides of a conversation sending numbered messages while nodes die,
restart or lose Redis, and the books kept to prove nothing was lost,
duplicated or reordered.

Each side sends ``"<tag> <n>"`` for n = 0, 1, 2, ... one after another. When a
send fails because the transport went (its node was killed or stopped), the
side reconnects through the load balancer and resumes, as a page does
(``ReferenceClient.reconnect``); then it looks at its own ``seq`` in the
resumed roster: if the server had accepted the send before the node went (the
ack was what got lost), the message counts as sent; else it is sent again
with the same number. A send that got no ack on a transport that stays up
(the node was cut from Redis for a moment) is tried again on it with the
same ``seq``: ``replayed`` then means the server had taken it. So each
number is meant to arrive exactly once, and the check is on what each
receiver decrypted, in order.

The test steps at the end (``until``, ``more_sent``, ``finish``) wait for
events with generous hang guards and, on a hang, fail with where every side
stands and the nodes' warnings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import socketio

from chatserver.client.reference import CallFailed, ReferenceClient
from tests.helpers.waiting import eventually

if TYPE_CHECKING:
    from tests.helpers.cluster import Cluster

# Pacing only (never what a test asserts): a person types far slower, and
# each send also waits for its ack, so this bounds the rate on a fast machine.
SEND_GAP_SECS = 0.1
# Refusals after which the side reconnects and tries again.
TRANSPORT_GONE = frozenset({"not_connected", "unavailable", "connect_failed"})
# After a failed send, how long (x 50 ms) to watch whether the transport drops.
DROP_SHOWS_POLLS = 20


@dataclass(eq=False)
class Side:
    client: ReferenceClient
    tag: str
    headers: Mapping[str, str] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)  # accepted by the server, in order
    received: list[str] = field(default_factory=list)  # decrypted, in arrival order
    reconnects: int = 0
    nodes: list[str] = field(default_factory=list)  # the node of each transport


class Talk:
    """One conversation's youth and counsellor sending to each other until
    ``stop``; ``url`` is the load balancer the sides reconnect through."""

    def __init__(self, url: str, conversation: str, youth: ReferenceClient,
                 counsellor: ReferenceClient, counsellor_headers: Mapping[str, str],
                 tag: str = "") -> None:
        self.url = url
        self.conversation = conversation
        self.youth = Side(youth, f"{tag}y")
        self.counsellor = Side(counsellor, f"{tag}c", counsellor_headers)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.errors: list[BaseException] = []

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.youth, self.counsellor

    def start(self) -> None:
        for side in self.sides:
            side.nodes.append(_node(side.client))
            self._tasks.append(asyncio.create_task(self._send_loop(side)))
            self._tasks.append(asyncio.create_task(self._read_loop(side)))

    async def stop(self) -> None:
        """Stop sending (each side finishes the send in flight)."""
        self._stop.set()
        senders = self._tasks[0::2]
        await asyncio.gather(*senders, return_exceptions=True)

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def sent_at_least(self, n: int) -> bool:
        """Both sides have had ``n`` more sends accepted (for ``eventually``)."""
        if self.errors:
            raise self.errors[0]
        return all(len(side.sent) >= n for side in self.sides)

    def complete(self) -> bool:
        """Every accepted message has arrived on the other side."""
        if self.errors:
            raise self.errors[0]
        return (len(self.counsellor.received) >= len(self.youth.sent)
                and len(self.youth.received) >= len(self.counsellor.sent))

    def summary(self) -> str:
        """Where each side stands (for a failing assertion's message)."""
        return "; ".join(
            f"{side.tag}: sent {len(side.sent)}, received {len(side.received)}, "
            f"reconnects {side.reconnects}, nodes {side.nodes}, now {_node(side.client)!r}"
            for side in self.sides)

    def problems(self) -> list[str]:
        """What was lost, duplicated or out of order, per direction; [] if none."""
        found = []
        for sender, receiver in ((self.youth, self.counsellor), (self.counsellor, self.youth)):
            got, want = receiver.received, sender.sent
            lost = [m for m in want if m not in got]
            dups = sorted({m for m in got if got.count(m) > 1})
            strangers = [m for m in got if m not in want]
            ordered = [m for m in got if m in want] == [m for m in want if m in got]
            if lost or dups or strangers or not ordered:
                found.append(f"{sender.tag}->{receiver.tag}: lost {lost}, duplicated {dups}, "
                             f"unexpected {strangers}, in order: {ordered}")
        for side in self.sides:
            gaps = [g for g in side.client.gaps if g.conversation == self.conversation]
            if gaps:
                found.append(f"{side.tag} saw seq gaps {gaps}")
            if side.client.undecryptable:
                found.append(f"{side.tag}: {side.client.undecryptable} undecryptable boxes")
        return found

    async def _read_loop(self, side: Side) -> None:
        client = side.client
        while True:
            message = await client.inbox.get()
            if message.conversation == self.conversation and message.type == "msg":
                side.received.append(message.text)

    async def _send_loop(self, side: Side) -> None:
        try:
            n = 0
            while not self._stop.is_set():
                text = f"{side.tag} {n}"
                await self._send_once(side, text)
                side.sent.append(text)
                n += 1
                await asyncio.sleep(SEND_GAP_SECS)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.errors.append(exc)
            raise

    async def _send_once(self, side: Side, text: str) -> None:
        """Send ``text`` so that the server takes it exactly once."""
        client = side.client
        conv = client.conversations[self.conversation]
        retried = False
        while True:
            seq = conv.sent_seq + 1
            try:
                await client.send_text(self.conversation, text)
                return
            except CallFailed as exc:
                if exc.code == "replayed" and retried:
                    # Taken before the failure we tried again after (its ack was lost).
                    conv.sent_seq = seq
                    return
                if exc.code not in TRANSPORT_GONE:
                    raise
            except (TimeoutError, socketio.exceptions.SocketIOError):
                pass  # no ack: the node went, or is cut off from Redis for a moment
            retried = True
            await self._recover(side)
            if conv.sent_seq >= seq:
                return  # the resumed roster says the server had taken it

    async def _recover(self, side: Side) -> None:
        """After a failed send: if the transport went, reconnect and resume;
        if it is still up (the live state was away), just pause briefly."""
        client = side.client
        for _ in range(DROP_SHOWS_POLLS):
            if not client.connected:
                break
            await asyncio.sleep(0.05)
        if client.connected:
            return
        await client.reconnect(self.url, side.headers, within_secs=60.0)
        side.reconnects += 1
        side.nodes.append(_node(client))


def _node(client: ReferenceClient) -> str:
    sid = client.sid or ""
    return sid.split(".", 1)[0]


# ----------------------------------------------------------- test steps

PROGRESS_SECS = 60.0  # hang guards: a node's death costs a reconnect or two
DELIVERY_SECS = 60.0


async def until(c: Cluster, talks: list[Talk], check: Callable[[], bool]) -> None:
    """Until ``check`` holds; a sender's error is raised at once, and a hang
    fails with where every side stands and the nodes' warnings."""
    try:
        await eventually(lambda: all(t.sent_at_least(0) for t in talks) and check(),
                         PROGRESS_SECS, every=0.05)
    except Exception as exc:  # a hang, or a sender's error: say where everyone stands
        states = "\n".join(t.summary() for t in talks)
        raise AssertionError(f"{exc!r}\n{states}\n{c.log_excerpt()}") from exc


async def more_sent(c: Cluster, talks: list[Talk], n: int) -> None:
    """Until every side of every talk has had ``n`` more sends accepted."""
    targets = [(t, len(t.youth.sent) + n, len(t.counsellor.sent) + n) for t in talks]
    await until(c, talks, lambda: all(len(t.youth.sent) >= y and len(t.counsellor.sent) >= n_c
                                      for t, y, n_c in targets))


async def finish(c: Cluster, talks: list[Talk]) -> None:
    """Stop sending, wait for every accepted message to arrive, and check the books."""
    for t in talks:
        await t.stop()
    try:
        await eventually(lambda: all(t.complete() for t in talks), DELIVERY_SECS, every=0.05)
    except AssertionError:
        pass  # the books below say what is missing
    problems = [p for t in talks for p in t.problems()]
    assert problems == [], "\n".join(problems) + "\n" + c.log_excerpt()
    for t in talks:
        assert sum(len(side.sent) for side in t.sides) > 0


async def start_talks(c: Cluster, placements: list[tuple[str, str]]) -> list[Talk]:
    """One talking conversation per (youth's node, counsellor's node)."""
    talks = []
    for youth_node, counsellor_node in placements:
        youth, counsellor, login, conv = await c.chat(youth_node, counsellor_node)
        talks.append(Talk(c.url, conv, youth, counsellor, {"Cookie": login.cookie},
                          tag=f"{youth_node}{counsellor_node}"))
    for t in talks:
        t.start()
    return talks


async def close_talks(talks: list[Talk]) -> None:
    for t in talks:
        await t.close()
