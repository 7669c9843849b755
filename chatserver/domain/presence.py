"""Presence: whether a youth's page is there right now (docs/design/conversations.md,
"Presence").

A youth whose connection went away keeps their place for ``grace_secs`` (a
phone in a tunnel comes back and resumes). After ``presence_grace_secs`` of
that the others are told the youth is offline, so a counsellor does not
write into the void or claim someone who is not there; the queue shows them
apart and *take next* passes them by. Coming back clears it at once.

These functions change one conversation and say whom to tell; ChatService
keeps the set of conversations whose youth is away (the queue counts it).
"""

from __future__ import annotations

from chatserver.domain.clock import to_ms
from chatserver.domain.events import Outcome
from chatserver.domain.model import Conversation, Member, Role


def watched(member: Member) -> bool:
    """A youth's presence is shown to staff, a counsellor's to the youth (and a
    liaison): a youth whose counsellor's page died must see that they wait
    for them, not that their messages went somewhere. A liaison's is not."""
    return member.role in (Role.YOUTH, Role.COUNSELLOR)


def mark_away(conv: Conversation, member: Member) -> Outcome:
    """The member has been gone past the presence grace: tell everyone else."""
    member.away = True
    out = Outcome()
    out.emit("presence", payload(conv, member), conv.online(exclude=member.id))
    return out


def mark_back(conv: Conversation, member: Member) -> Outcome:
    """The member resumed: if the others were told they were away, tell them
    they are back."""
    out = Outcome()
    if not member.away:
        return out
    member.away = False
    out.emit("presence", payload(conv, member), conv.online(exclude=member.id))
    return out


def payload(conv: Conversation, member: Member) -> dict[str, object]:
    body: dict[str, object] = {"conversation": conv.id, "member": member.id,
                               "online": not member.away}
    if member.away and member.offline_since is not None:
        body["since"] = to_ms(member.offline_since)
    return body
