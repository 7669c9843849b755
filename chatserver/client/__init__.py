"""Python clients of the chat protocol (docs/protocol.md)."""

from chatserver.client.reference import (
    CallFailed,
    ConsentRequest,
    Conversation,
    Gap,
    Invite,
    JoinRequest,
    Received,
    ReferenceClient,
    RefusedLocally,
    RosterEntry,
    RosterView,
    StaffLogin,
    invite_fragment,
    parse_invite_fragment,
    staff_login,
)

__all__ = [
    "CallFailed",
    "ConsentRequest",
    "Conversation",
    "Gap",
    "Invite",
    "JoinRequest",
    "Received",
    "ReferenceClient",
    "RefusedLocally",
    "RosterEntry",
    "RosterView",
    "StaffLogin",
    "invite_fragment",
    "parse_invite_fragment",
    "staff_login",
]
