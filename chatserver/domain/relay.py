"""Relaying end-to-end encrypted boxes: sequence rules, per-recipient RAM
buffers, cumulative acknowledgements and in-order redelivery on resume.

The server never opens a box. It checks only who may send what to whom, in
which epoch and with which sequence number (docs/protocol.md, ``send``).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chatserver.domain.events import Outcome
from chatserver.domain.model import Buffered, Conversation, Member, Role, State
from chatserver.errors import (
    BacklogFull,
    OutOfOrder,
    Replayed,
    StaleEpoch,
    UnknownRecipient,
    WrongState,
)


@dataclass(frozen=True, slots=True)
class BoxIn:
    """One validated box from a send: recipient, nonce and ciphertext (base64url)."""

    to: str
    nonce: str
    ct: str


def relay(conv: Conversation, sender: Member, epoch: int, seq: int,
          boxes: Sequence[BoxIn], backlog_max: int) -> Outcome:
    """Accept one send or raise without changing anything."""
    if conv.state is State.ENDED:
        raise WrongState()
    if conv.state is State.PAUSED and sender.role is Role.YOUTH:
        raise WrongState()  # the decoy screen sends nothing
    if epoch != conv.epoch:
        raise StaleEpoch()
    if seq <= sender.last_seq:
        raise Replayed()
    if seq != sender.last_seq + 1:
        raise OutOfOrder()
    others = [m for m in conv.members.values() if m.id != sender.id]
    if not others:
        raise WrongState()  # alone in the queue: nobody to send to
    wanted = {m.id for m in others}
    addressed = [b.to for b in boxes]
    if len(addressed) != len(wanted) or set(addressed) != wanted:
        raise UnknownRecipient()
    for m in others:
        if m.inbox_count >= backlog_max:
            raise BacklogFull()

    # Checks passed: change state, then name the recipients.
    sender.last_seq = seq
    conv.message_count += 1
    out = Outcome(reply={"seq": seq})
    for box in boxes:
        recipient = conv.members[box.to]
        payload = {"conversation": conv.id, "from": sender.id, "to": box.to,
                   "epoch": epoch, "seq": seq, "nonce": box.nonce, "ct": box.ct}
        recipient.arrivals += 1
        buffered = recipient.inbox.get(sender.id)
        if buffered is None:  # not setdefault: that builds a deque every message
            buffered = recipient.inbox[sender.id] = deque()
        buffered.append(Buffered(recipient.arrivals, seq, payload))
        recipient.inbox_count += 1
        if recipient.conn is not None:
            out.emit("box", payload, (recipient.conn,))
    return out


def acknowledge(recipient: Member, sender_id: str, seq: int) -> int:
    """Drop every buffered box from ``sender_id`` up to ``seq``; return how many."""
    queue = recipient.inbox.get(sender_id)
    dropped = 0
    while queue and queue[0].seq <= seq:
        queue.popleft()
        dropped += 1
    recipient.inbox_count -= dropped
    return dropped


def pending(recipient: Member) -> Iterator[dict[str, Any]]:
    """Every undelivered box in the order it arrived (across senders)."""
    merged = heapq.merge(*recipient.inbox.values(), key=lambda b: b.arrival)
    for item in merged:
        yield item.payload


def drop_all(conv: Conversation) -> None:
    """End of conversation: the ciphertext buffers go with it."""
    for m in conv.members.values():
        m.inbox.clear()
        m.inbox_count = 0
