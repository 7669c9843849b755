"""Where the rest of the code imports the chat service from: ``ChatService``
and the names its callers use. The rules themselves are split by feature in
chatserver/domain/chat/ (docs/design/conversations.md, "Code")."""

from chatserver.domain.chat.names import (
    LIAISON_NS,
    PROFESSIONAL_LANE,
    ROLE_NAMESPACE,
    STAFF_NS,
    YOUTH_NS,
    personal_lane,
)
from chatserver.domain.chat.profile import StartProfile, StatsSink
from chatserver.domain.chat.service import ChatService

__all__ = ["LIAISON_NS", "PROFESSIONAL_LANE", "ROLE_NAMESPACE", "STAFF_NS", "YOUTH_NS",
           "ChatService", "StartProfile", "StatsSink", "personal_lane"]
