"""The waiting queue's own operations, timed in-process at growing lengths,
to separate the data structure (O(log n) promised) from everything else a
claim over the network waits for (the event loop's other work).

    python -m loadtests.queue_bench   -> JSON on stdout
"""

from __future__ import annotations

import json
import random
import time

from chatserver.queue.model import WaitingQueue

SIZES = (100, 1_000, 10_000, 100_000)
OPS = 2_000


def bench(size: int) -> dict[str, float]:
    q = WaitingQueue()
    ids = [f"{i:032x}" for i in range(size)]
    for i, c in enumerate(ids):
        q.add(c, float(i), urgent=(i % 50 == 0))
    picks = random.sample(ids, min(OPS, size))
    t = time.perf_counter()
    for c in picks:
        q.position(c)
    position_us = (time.perf_counter() - t) / len(picks) * 1e6
    t = time.perf_counter()
    for c in picks:  # a claim from anywhere in the queue, then the same youth arriving again
        q.remove(c)
        q.add(c, float(size), urgent=False)
    remove_add_us = (time.perf_counter() - t) / len(picks) * 1e6
    t = time.perf_counter()
    for _ in range(min(OPS, size)):  # take_next: the head
        head = next(q.iter_lane())
        q.remove(head)
        q.add(head, float(size), urgent=False)
    take_us = (time.perf_counter() - t) / min(OPS, size) * 1e6
    return {"waiting": size, "position_us": round(position_us, 2),
            "claim_remove_add_us": round(remove_add_us, 2), "take_next_us": round(take_us, 2)}


if __name__ == "__main__":
    print(json.dumps([bench(n) for n in SIZES]))
