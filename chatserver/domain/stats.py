"""Monthly follow-up statistics: month × dimension × value → count.

Counts are held in memory and written in batches (``flush``), never one row
per conversation. The app flushes every ``settings.stats_flush_secs`` and once
at shutdown. Why buffered: someone watching the database (or its file times)
would otherwise see a count change at the moment a conversation starts and
could line "municipality X, topic Y" up with that conversation's start time in
the audit log. With a flush every 15 minutes, each write mixes every
conversation of that interval.

Known limit: in a quiet interval a flush may carry a single conversation's
profile, and anyone who can read both the database and the audit log can
still pair that flush with the one conversation started in the interval.
Counts carry no conversation id or time finer than the month either way
(unmet demand also carries an hour-of-week band: ``hour_band``). Every
reading of the counts goes through ``stats_report``, which suppresses small
counts and protects them against subtraction (docs/statistics.md); what each
dimension means, and what it cannot mean, is listed there.

Counts buffered in memory are lost if the process is killed without a clean
shutdown; statistics are approximate by design.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from chatserver.domain.clock import Clock
from chatserver.storage.base import StatsStore

# The optional profile's keys (protocol.md, youth `start`) plus 'contacts' for
# contact counts (e.g. started, abandoned) that carry no profile.
# The funders' follow-up (docs/mission.md): contacts by gender, age band and
# municipality; reasons for contact; professionals by workplace municipality;
# and referrals onward (per partner kind and partner).
# Also: Stockholm's districts, professionals' professions, the chat language,
# first contact vs returning (a redeemed return code), and demand not met by
# hour-of-week band: starts while nobody was on duty, youths who left the queue.
DIMENSIONS = frozenset({
    "gender", "age_band", "municipality", "topic", "contacts",
    "reason", "workplace_municipality", "referral", "referral_partner",
    "district", "profession", "language", "contact_kind", "unmet_closed", "unmet_left",
})
# Hour-of-week bands (local time, settings.stats_timezone): Monday–Friday or
# Saturday–Sunday by the local calendar day; day 08–17, evening 17–22, night
# 22–08 (so Friday 23:00 is a weekday night and Saturday 03:00 a weekend
# night). Public holidays count as the weekday they fall on.
BANDS = ("weekday_day", "weekday_evening", "weekday_night",
         "weekend_day", "weekend_evening", "weekend_night")
MAX_VALUE_CHARS = 64  # profile codes from config are far shorter


def month_of(t: float) -> str:
    """'YYYY-MM' of a Unix time, in UTC."""
    return time.strftime("%Y-%m", time.gmtime(t))


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def hour_band(t: float, timezone: str) -> str:
    """The hour-of-week band (``BANDS``) of a Unix time in ``timezone``."""
    local = datetime.fromtimestamp(t, _zone(timezone))
    hour = local.hour
    part = "day" if 8 <= hour < 17 else "evening" if 17 <= hour < 22 else "night"
    return f"{'weekend' if local.weekday() >= 5 else 'weekday'}_{part}"


class StatsCounter:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._pending: dict[str, Counter[tuple[str, str]]] = {}

    def count(self, dimension: str, value: str, n: int = 1) -> None:
        """Add ``n`` to (this month, dimension, value). ValueError for an unknown dimension."""
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown statistics dimension {dimension!r}")
        if not value or len(value) > MAX_VALUE_CHARS or not value.isprintable():
            raise ValueError("statistics value must be a short printable code")
        if n < 1:
            raise ValueError("statistics count must be positive")
        month = month_of(self._clock.now())
        self._pending.setdefault(month, Counter())[(dimension, value)] += n

    def pending(self) -> int:
        """How many counts are waiting to be written."""
        return sum(sum(c.values()) for c in self._pending.values())

    async def flush(self, store: StatsStore) -> int:
        """Write every pending count and clear them; returns how many were written.

        If the store fails, what was not written stays pending for the next
        flush (each month is written atomically).
        """
        taken, self._pending = self._pending, {}
        written = 0
        months = sorted(taken)
        for i, month in enumerate(months):
            try:
                await store.add_counts(month, taken[month])
            except BaseException:
                for rest in months[i:]:
                    self._pending.setdefault(rest, Counter()).update(taken[rest])
                raise
            written += sum(taken[month].values())
        return written
