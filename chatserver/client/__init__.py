"""Python clients of the chat protocol (docs/protocol.md)."""

from chatserver.client.reference import (
    CallFailed,
    Conversation,
    Gap,
    Received,
    ReferenceClient,
    RosterEntry,
    RosterView,
    StaffLogin,
    staff_login,
)

__all__ = [
    "CallFailed",
    "Conversation",
    "Gap",
    "Received",
    "ReferenceClient",
    "RosterEntry",
    "RosterView",
    "StaffLogin",
    "staff_login",
]
