"""One tree of named errors. Each carries a stable, client-safe code.

The table of codes lives in docs/protocol.md ("Error codes"); a test checks that
every code defined here is documented there. Internal text never leaves the
server: the transport sends only ``{"error": code}`` (plus ``info`` where a
subclass declares client-safe extra data).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ChatError(Exception):
    """Base of every error a client may be told about."""

    code: ClassVar[str] = "internal"

    def __init__(self, info: dict[str, Any] | None = None) -> None:
        super().__init__(self.code)
        # Client-safe extra data only (opening hours, retry_after...). Never secrets.
        self.info = info or {}


class BadPayload(ChatError):
    code = "bad_payload"


class TooLarge(ChatError):
    code = "too_large"


class RateLimited(ChatError):
    code = "rate_limited"


class ServerFull(ChatError):
    """This node holds max_anonymous_connections: a youth is told whom to call."""

    code = "server_full"


class NotAllowed(ChatError):
    """The caller's role may not do this."""

    code = "not_allowed"


class UnknownConversation(ChatError):
    code = "unknown_conversation"


class NotMember(ChatError):
    code = "not_member"


class WrongState(ChatError):
    code = "wrong_state"


class AlreadyClaimed(ChatError):
    code = "already_claimed"


class AtCapacity(ChatError):
    code = "at_capacity"


class NotOnDuty(ChatError):
    code = "not_on_duty"


class QueueEmpty(ChatError):
    code = "queue_empty"


class YouthOffline(ChatError):
    """The youth's page has been gone past presence_grace_secs: claim only
    with ``offline_ok`` (the counsellor was asked first)."""

    code = "youth_offline"


class UnknownLanguage(ChatError):
    """A youth page language the server has no catalog for (a page built from
    other sources than the server's configuration lists)."""

    code = "unknown_language"


class QueueFull(ChatError):
    code = "queue_full"


class BadRange(ChatError):
    """A statistics period that is malformed, reversed or too long."""

    code = "bad_range"


class NobodyOnDuty(ChatError):
    code = "nobody_on_duty"


class Replayed(ChatError):
    code = "replayed"


class OutOfOrder(ChatError):
    code = "out_of_order"


class StaleEpoch(ChatError):
    code = "stale_epoch"


class UnknownRecipient(ChatError):
    code = "unknown_recipient"


class BacklogFull(ChatError):
    """A recipient has too many undelivered boxes; the sender should wait."""

    code = "backlog_full"


class BadResume(ChatError):
    code = "bad_resume"


class AlreadyStarted(ChatError):
    code = "already_started"


class SessionRequired(ChatError):
    code = "session_required"


class BadOrigin(ChatError):
    code = "bad_origin"


class BadCredentials(ChatError):
    code = "bad_credentials"


class LockedOut(ChatError):
    code = "locked_out"


class CsrfFailed(ChatError):
    code = "csrf_failed"


class AccountExists(ChatError):
    code = "account_exists"


class UnknownAccount(ChatError):
    code = "unknown_account"


def all_codes() -> set[str]:
    """Every code a client can receive (used by the docs test)."""
    codes = {ChatError.code}
    stack: list[type[ChatError]] = [ChatError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            codes.add(sub.code)
            stack.append(sub)
    return codes


class UnknownEvent(ChatError):
    code = "unknown_event"


class BadPassphrase(ChatError):
    """Unknown, used or expired return passphrase: one answer for all three."""

    code = "bad_passphrase"


class BadInvite(ChatError):
    """Unknown, used, expired or revoked invite: one answer for all."""

    code = "bad_invite"


class UnknownPartner(ChatError):
    code = "unknown_partner"


class PartnerExists(ChatError):
    """A new directory entry's code is taken (retired entries keep theirs)."""

    code = "partner_exists"


class BadPartner(ChatError):
    """A directory entry that fails its checks; ``info.field`` names the field."""

    code = "bad_partner"


class BadKind(BadPartner):
    code = "bad_kind"


class BadPhone(BadPartner):
    code = "bad_phone"


class TransferPending(ChatError):
    code = "transfer_pending"


class LiveUnavailable(ChatError):
    """The shared live state (Redis) cannot be reached: nothing was done.
    Carries whom to call instead, as ``server_full`` does."""

    code = "unavailable"
