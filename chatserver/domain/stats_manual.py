"""Hand-entered monthly counts: outreach activities and other channels.

No event in the chat counts a seminar at a school or a phone call, so
operators enter them per month (docs/statistics.md). An entry replaces the
month's value; the audit log keeps who changed which month and kind from
which value to which, so a correction is accountable and a figure in a
funders' report can be traced to the entries behind it.
"""

from __future__ import annotations

from chatserver.domain.audit import AuditLog
from chatserver.domain.stats_report import MANUAL_KINDS, months_between
from chatserver.errors import BadPayload
from chatserver.storage.base import StatsStore

MAX_MANUAL_COUNT = 100_000  # a month's activities; more is a typing error


async def enter(store: StatsStore, audit: AuditLog, actor: str, month: object, kind: object,
                count: object) -> int | None:
    """Set ``kind``'s count for ``month``; returns the value it replaced.

    Everything is checked before anything changes: BadRange for a month that
    is not 'YYYY-MM', BadPayload for an unknown kind or a count that is not a
    whole number from 0 to MAX_MANUAL_COUNT.
    """
    (checked_month,) = months_between(month, month)
    if not isinstance(kind, str) or kind not in MANUAL_KINDS:
        raise BadPayload()
    if isinstance(count, bool) or not isinstance(count, int) or \
            not 0 <= count <= MAX_MANUAL_COUNT:
        raise BadPayload()
    old = await store.set_manual_count(checked_month, kind, count)
    if old is None:
        await audit.record(actor, "stats_manual", month=checked_month, kind=kind, new=count)
    else:
        await audit.record(actor, "stats_manual", month=checked_month, kind=kind, new=count,
                           old=old)
    return old
