"""The counsellors' queue pushes at the national peak, in-process: what one
round costs the server and how many bytes it sends consoles, with whole
views every time (``queue_deltas = false``) and with changes only, and with
the whole list or only its front to counsellors at capacity
(``staff_queue_at_capacity_max``).

No sockets and no generator, so the figures are the domain's and the JSON
encoding's alone, and the byte counts do not depend on the machine: 10 000
waiting youths, 500 counsellors on duty (capacity 3; most of them full, as at
the peak), and every simulated second about as many arrivals, claims, ends
and youths giving up as the peak scenario has (docs/performance.md), then
one round. Each event is encoded once, as the transport does, and its bytes
count once per recipient.

    python -m loadtests.staff_push_bench [--secs 60] -> JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from typing import Any

from chatserver.crypto.tokens import b64e
from chatserver.domain.clock import FakeClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn
from chatserver.domain.model import StaffRef
from chatserver.errors import ChatError
from chatserver.settings import load_settings

WAITING = 10_000
COUNSELLORS = 500
CAPACITY = 3
PER_SEC = {"arrivals": 11, "claims": 11, "ends": 11, "leaves": 2}
PROFILES = [StartProfile(language="sv", age_band="16-17", topic="control"),
            StartProfile(language="ar", age_band="13-15", topic="forced_marriage"),
            StartProfile(),
            StartProfile(language="en", urgent=True)]


def run(deltas: bool, at_capacity_max: int, secs: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as data_dir:  # the secrets it makes go with it
        settings = load_settings(env={"CHAT_DATA_DIR": data_dir},
                                 overrides={"queue_deltas": deltas, "queue_max": WAITING * 2,
                                            "staff_queue_at_capacity_max": at_capacity_max})
        settings.require_secrets()
    clock = FakeClock()
    chat = ChatService(settings, clock)
    staff = [StaffRef(id=n, username=f"c{n}", role="counsellor", alias=f"A{n}",
                      capacity=CAPACITY) for n in range(1, COUNSELLORS + 1)]
    conns = {s.id: Conn(STAFF_NS, f"s{s.id}") for s in staff}
    for s in staff:
        chat.staff_connected(s, conns[s.id])
        chat.duty(s, True)
    youths: dict[str, Conn] = {}
    made = 0

    def arrive() -> None:
        nonlocal made
        made += 1
        conn = Conn(YOUTH_NS, f"y{made}")
        out = chat.start(conn, b64e(os.urandom(32)), PROFILES[made % len(PROFILES)])
        youths[str(out.reply["conversation"])] = conn

    for _ in range(WAITING):
        arrive()
    # Most counsellors full, as at the peak: claims from the head.
    for s in staff[: int(COUNSELLORS * 0.9)]:
        for _ in range(CAPACITY):
            chat.claim(s, conns[s.id], None, b64e(os.urandom(32)))
    chat.queue_updates()  # the first round after the fill; not measured
    rounds: list[float] = []
    events = payload_bytes = sent_bytes = snapshots = 0
    for _ in range(secs):
        for _ in range(PER_SEC["ends"]):
            busy = [s for s in staff if chat.counsellors[s.id].active]
            s = rng.choice(busy)
            chat.end(s, conns[s.id], rng.choice(sorted(chat.counsellors[s.id].active)))
        for _ in range(PER_SEC["claims"]):
            free = [s for s in staff if chat.counsellors[s.id].load < CAPACITY]
            if not free:
                break
            s = rng.choice(free)
            head = [cid for cid, _ in zip(chat.queue.iter_lane(), range(5), strict=False)]
            try:
                chat.claim(s, conns[s.id], rng.choice(head) if rng.random() < 0.7 else None,
                           b64e(os.urandom(32)))
            except ChatError:
                pass
        waiting = [cid for cid, _ in zip(chat.queue.iter_lane(), range(400), strict=False)]
        for cid in rng.sample(waiting, PER_SEC["leaves"]):
            chat.leave(youths[cid], cid, "done")
        for _ in range(PER_SEC["arrivals"]):
            arrive()
        clock.advance(1.0)
        t = time.process_time()  # CPU time: other work on a shared machine stays out
        out = chat.queue_updates()
        for e in out.emits:
            if e.event not in ("queue", "queue_delta") or e.to[0].namespace != STAFF_NS:
                continue
            size = len(json.dumps([e.event, e.payload], separators=(",", ":")))
            events += len(e.to)
            payload_bytes += size
            sent_bytes += size * len(e.to)
            snapshots += len(e.to) if e.event == "queue" else 0
        rounds.append((time.process_time() - t) * 1000)
    rounds.sort()
    return {"queue_deltas": deltas, "staff_queue_at_capacity_max": at_capacity_max,
            "secs": secs, "waiting": len(chat.queue),
            "pushes_per_s": round(events / secs, 1),
            "whole_views_per_s": round(snapshots / secs, 1),
            "bytes_sent_per_s": round(sent_bytes / secs),
            "bytes_encoded_per_s": round(payload_bytes / secs),
            "round_cpu_ms_p50": round(rounds[len(rounds) // 2], 2),
            "round_cpu_ms_max": round(rounds[-1], 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--secs", type=int, default=60)
    args = parser.parse_args()
    # Before (whole views of 50 to everyone), each change alone, both (shipped).
    print(json.dumps([run(d, m, args.secs) for d, m in
                      ((False, 50), (False, 5), (True, 50), (True, 5))], indent=1))
