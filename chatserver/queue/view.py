"""What one counsellor's console shows of the queue, as numbered states, and
the change from one state to another (docs/protocol.md, "Queue views";
docs/design/queue.md, "Pushes to counsellors").

A *view* is the listed entries in order plus the counts. Each distinct view
the server publishes gets a version from one counter shared by every view, so
a console can always tell an older push from a newer one, even when it moves
from the shared view to its own (a returning youth of theirs arrives) and
back. A *delta* takes a console from the view it holds (``from_v``) to a newer
one (``v``): entries removed, added (each with its index in the new list) and
changed. Entries are compared as whole dicts, so a field added to the entries
flows through as ``changed`` without this module knowing it.

Pure data: no I/O, no clock. ``apply`` is the reference for every client
(web_client/src/console/queue_state.js does the same; the reference client and
the tests use this one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Entry = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class View:
    version: int
    order: tuple[str, ...]  # conversation ids, as listed
    entries: Mapping[str, Entry]  # conversation id -> entry
    total: int
    offline: int

    def same(self, order: Sequence[str], entries: Mapping[str, Entry], total: int,
             offline: int) -> bool:
        return (self.total == total and self.offline == offline
                and self.order == tuple(order) and self.entries == entries)

    def snapshot(self) -> dict[str, Any]:
        """The whole view, as the ``queue`` event carries it."""
        return {"v": self.version, "total": self.total, "offline": self.offline,
                "entries": [self.entries[cid] for cid in self.order]}


def make_view(version: int, entries: Sequence[Entry], total: int, offline: int) -> View:
    by_id = {str(e["conversation"]): e for e in entries}
    return View(version, tuple(by_id), by_id, total, offline)


def delta(old: View, new: View) -> dict[str, Any] | None:
    """The ``queue_delta`` payload from ``old`` to ``new``, or None when an
    entry kept from ``old`` changed place among the others (a youth moved
    from a personal lane to the general one): a snapshot says that more
    simply, and it is rare."""
    kept_old = [cid for cid in old.order if cid in new.entries]
    kept_new = [cid for cid in new.order if cid in old.entries]
    if kept_old != kept_new:
        return None
    return {
        "v": new.version, "from_v": old.version,
        "total": new.total, "offline": new.offline,
        "removed": [cid for cid in old.order if cid not in new.entries],
        "added": [{"at": i, "entry": new.entries[cid]}
                  for i, cid in enumerate(new.order) if cid not in old.entries],
        "changed": [new.entries[cid] for cid in kept_new
                    if new.entries[cid] != old.entries[cid]],
    }


class Gap(Exception):
    """The delta does not start from the view held: ask for a snapshot."""


def apply(held: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot-shaped view after ``change`` (a ``queue_delta``) is applied
    to ``held`` (a snapshot-shaped view with ``v``). Raises ``Gap`` when
    ``change`` does not start from ``held``'s version."""
    if change.get("from_v") != held.get("v"):
        raise Gap()
    gone = set(change["removed"])
    order = [str(e["conversation"]) for e in held["entries"]
             if e["conversation"] not in gone]
    by_id = {str(e["conversation"]): e for e in held["entries"] if e["conversation"] not in gone}
    for entry in change["changed"]:
        by_id[str(entry["conversation"])] = entry
    for item in sorted(change["added"], key=lambda a: int(a["at"])):
        cid = str(item["entry"]["conversation"])
        order.insert(int(item["at"]), cid)
        by_id[cid] = item["entry"]
    return {"v": change["v"], "total": change["total"], "offline": change["offline"],
            "entries": [by_id[cid] for cid in order]}
