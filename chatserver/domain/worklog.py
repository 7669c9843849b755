"""The staff-work log for operators: the audit log filtered by staff member,
action and period, and per-member summaries of a period (duty hours,
conversations taken, transfers, referrals by partner kind, invites, return
codes issued). Metadata only: the entries hold codes and counts, never what
was said (docs/design/audit.md). Design: docs/design/audit.md, "Staff work".

Pure functions over the entries ``AuditStore.iter_audit`` yields; the HTTP
routes (transport/audit_api.py) and their CSV files use them alike."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from chatserver.domain.audit import FIXED_ACTORS, utc_iso
from chatserver.errors import BadRange
from chatserver.storage.base import AuditEntry

PAGE_SIZE = 50
MAX_DAYS = 3660  # ten years and a little: never longer than any retention allows
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILTER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days ``first``..``last``, both included."""

    first: str  # YYYY-MM-DD
    last: str
    start_at: str  # utc_iso of first 00:00
    end_at: str  # utc_iso of the day after last, 00:00 (exclusive)
    start: float
    end: float


def period(first: str, last: str, today: float) -> Period:
    """Parse ``from``/``to`` query values; both empty: the last 30 days up to
    ``today``. Malformed, reversed or too long: ``BadRange``."""
    if not first and not last:
        end_day = datetime.fromtimestamp(today, UTC).date()
        first, last = (end_day - timedelta(days=29)).isoformat(), end_day.isoformat()
    if not (_DAY.match(first) and _DAY.match(last)):
        raise BadRange()
    try:
        a, b = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        raise BadRange() from None
    if b < a or (b - a).days >= MAX_DAYS:
        raise BadRange()
    start = datetime(a.year, a.month, a.day, tzinfo=UTC).timestamp()
    end = datetime(b.year, b.month, b.day, tzinfo=UTC).timestamp() + 86400
    return Period(first, last, utc_iso(start), utc_iso(end), start, end)


def name_filter(value: str) -> str:
    """An actor or action filter: empty (no filter) or a plain name."""
    if value and not _FILTER.match(value):
        raise BadRange()
    return value


def _detail(e: AuditEntry) -> dict[str, object]:
    try:
        value = json.loads(e.detail)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def row(e: AuditEntry) -> dict[str, object]:
    return {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
            "conversation": e.conversation, "detail": _detail(e)}


@dataclass(slots=True)
class Page:
    entries: list[dict[str, object]]
    total: int
    page: int
    pages: int
    actors: list[str]  # every actor in the period, for the filter's choices
    actions: list[str]


async def entries(log: AsyncIterable[AuditEntry], p: Period, actor: str, action: str,
                  page: int | None) -> Page:
    """Matching entries, newest first; one page of ``PAGE_SIZE`` (``page`` from 1),
    or all of them with ``page=None`` (the CSV file)."""
    matched: list[AuditEntry] = []
    actors: set[str] = set()
    actions: set[str] = set()
    async for e in log:
        if not p.start_at <= e.at < p.end_at:
            continue
        actors.add(e.actor)
        actions.add(e.action)
        if (actor and e.actor != actor) or (action and e.action != action):
            continue
        matched.append(e)
    matched.reverse()
    total = len(matched)
    pages = max(1, -(-total // PAGE_SIZE))
    if page is not None:
        page = min(max(page, 1), pages)
        matched = matched[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return Page([row(e) for e in matched], total, page or 1, pages, sorted(actors),
                sorted(actions))


def entries_csv(page: Page) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["seq", "at", "actor", "action", "conversation", "detail"])
    for r in page.entries:
        detail = r["detail"]
        w.writerow([r["seq"], r["at"], r["actor"], r["action"], r["conversation"] or "",
                    json.dumps(detail, sort_keys=True, separators=(",", ":"))])
    return out.getvalue()


@dataclass(slots=True)
class Summary:
    actor: str
    duty_secs: float = 0.0
    claims: int = 0
    transfers_offered: int = 0
    transfers_accepted: int = 0
    referrals: dict[str, int] = field(default_factory=dict)  # partner kind -> count
    invites: int = 0
    return_codes: int = 0

    def as_json(self) -> dict[str, object]:
        return {"actor": self.actor, "duty_hours": round(self.duty_secs / 3600, 2),
                "claims": self.claims, "transfers_offered": self.transfers_offered,
                "transfers_accepted": self.transfers_accepted,
                "referrals": dict(sorted(self.referrals.items())),
                "referrals_total": sum(self.referrals.values()),
                "invites": self.invites, "return_codes": self.return_codes}


_COUNTED = {"claim": "claims", "transfer_offered": "transfers_offered",
            "transfer_accepted": "transfers_accepted", "invite_created": "invites",
            "return_issued": "return_codes"}


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


async def summaries(log: AsyncIterable[AuditEntry], p: Period, now: float) -> list[Summary]:
    """One row per staff member who did anything in the period or was on duty
    in it. Duty hours are the overlap of each duty_on..duty_off span with the
    period, so a shift over midnight splits between days; a duty still on is
    counted up to ``now`` (or the period's end, whichever is first)."""
    rows: dict[str, Summary] = {}
    on_since: dict[str, float] = {}
    end = min(p.end, now)

    def add_duty(actor: str, since: float, until: float) -> None:
        span = min(until, end) - max(since, p.start)
        if span > 0:
            rows.setdefault(actor, Summary(actor)).duty_secs += span

    async for e in log:
        if e.at >= p.end_at:
            continue  # not ``break``: two nodes' clocks need not agree to the millisecond
        if e.actor in FIXED_ACTORS:
            continue
        if e.action in ("duty_on", "duty_off"):
            t = _seconds(e.at)
            since = on_since.pop(e.actor, None)
            if since is not None:
                add_duty(e.actor, since, t)
            if e.action == "duty_on":
                on_since[e.actor] = t
        if e.at < p.start_at:
            continue
        s = rows.setdefault(e.actor, Summary(e.actor))
        counted = _COUNTED.get(e.action)
        if counted is not None:
            setattr(s, counted, getattr(s, counted) + 1)
        elif e.action == "referral":
            kind = str(_detail(e).get("role", "other"))
            s.referrals[kind] = s.referrals.get(kind, 0) + 1
    for actor, since in on_since.items():
        add_duty(actor, since, end)
    return sorted(rows.values(), key=lambda s: s.actor)


def summaries_csv(rows: list[Summary]) -> str:
    kinds = sorted({k for s in rows for k in s.referrals})
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["staff", "duty_hours", "claims", "transfers_offered", "transfers_accepted",
                "referrals", *[f"referrals_{k}" for k in kinds], "invites", "return_codes"])
    for s in rows:
        j = s.as_json()
        w.writerow([s.actor, j["duty_hours"], s.claims, s.transfers_offered,
                    s.transfers_accepted, j["referrals_total"],
                    *[s.referrals.get(k, 0) for k in kinds], s.invites, s.return_codes])
    return out.getvalue()
