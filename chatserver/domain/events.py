"""What domain functions hand back to the transport: a reply for the caller,
events for explicitly named recipients, and audit entries. State is changed
first; the transport records the audit entries and then emits (events after
state: docs/style.md, "Events after state").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Conn:
    """A live connection, as the transport names it. Opaque to the domain."""

    namespace: str
    sid: str


@dataclass(frozen=True, slots=True)
class Emit:
    event: str
    payload: dict[str, Any]
    to: tuple[Conn, ...]

    def __post_init__(self) -> None:
        # No broadcast by accident: every event names who receives it.
        if not self.to:
            raise ValueError("an event needs at least one recipient")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    conversation: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    reply: dict[str, Any] = field(default_factory=dict)
    emits: list[Emit] = field(default_factory=list)
    audits: list[AuditEntry] = field(default_factory=list)

    def emit(self, event: str, payload: dict[str, Any], to: list[Conn] | tuple[Conn, ...]) -> None:
        """Queue an event; silently nothing when every recipient is offline."""
        if to:
            self.emits.append(Emit(event, payload, tuple(to)))

    def audit(self, actor: str, action: str, conversation: str | None = None,
              **detail: Any) -> None:
        self.audits.append(AuditEntry(actor, action, conversation, detail))

    def merge(self, other: Outcome) -> None:
        self.emits.extend(other.emits)
        self.audits.extend(other.audits)
