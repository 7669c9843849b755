"""ChatService's own interface, with every state-changing call taken through
a real Redis log and applied by two replicas (chatserver/live/replicated.py).

The domain tests run against this and against a plain ChatService with the
same assertions: a call's reply, events and audit entries come back as one
Outcome, exactly as ChatService returns it, and after every call the second
replica's state must equal the first's, encoded field by field (the log's
whole promise: every node holds the same state). Reads go to the first
replica. The replicas run on an event loop of their own, in a thread, so
the synchronous domain tests stay as they are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
from collections.abc import Callable
from typing import Any

from chatserver.domain.clock import Clock
from chatserver.domain.conversations import ChatService, StatsSink
from chatserver.domain.events import Emit, Outcome
from chatserver.domain.sessions import SessionStore
from chatserver.live import codec
from chatserver.live.replicated import NOT_STATE, ReplicatedLive
from chatserver.settings import Settings

# The calls that only read: served by the first replica directly.
READS = frozenset({"status", "is_open", "has_conversation", "return_target", "colleagues",
                   "ops_snapshot", "listed_max", "staff_queue_snapshot", "queue_push_current",
                   "sample_history"})
CALL_BOUND_SECS = 30.0
FINISH_BOUND_SECS = 10.0
# Encoding a whole state is ~20x a call: the replicas' states are compared
# after every this many calls, and when the test ends.
STATE_CHECK_EVERY = 16


class _NoStats:
    def count(self, dimension: str, value: str) -> None:
        raise AssertionError("a replica counted a command it did not take")


class ReplicatedChat:
    def __init__(self, settings: Settings, clock: Clock, stats: StatsSink | None,
                 redis_url: str, redis_password: str) -> None:
        secrets = dataclasses.replace(settings.require_secrets(), redis_password=redis_password)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._events: list[list[Emit]] = [[], []]
        self._calls = 0
        self.replicas: list[ReplicatedLive] = []
        for n, node in enumerate(("ra", "rb")):
            node_settings = dataclasses.replace(settings, redis_url=redis_url, node_id=node,
                                                redis_empty_wait_secs=0.0,
                                                secrets=secrets)
            chat = ChatService(node_settings, clock, stats=stats if n == 0 else _NoStats())
            sessions = SessionStore.from_settings(node_settings, clock)
            live = ReplicatedLive(node_settings, chat, sessions, stats if n == 0 else _NoStats())  # type: ignore[arg-type]
            self.replicas.append(live)
            self._run(live.start(self._deliverer(n), _nothing))

    def _deliverer(self, n: int) -> Callable[[Outcome, bool], Any]:
        async def deliver(out: Outcome, queue_round: bool) -> None:
            self._events[n].extend(out.emits)
        return deliver

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_BOUND_SECS)

    def check_same_state(self, after: str = "the test") -> None:
        first, second = self.replicas
        assert state_of(second) == state_of(first), f"replicas differ after {after}"

    def close(self) -> None:
        try:
            self._run(self._settle())
            self.check_same_state()
        finally:
            for live in self.replicas:
                self._run(live.close())
            # Nothing may outlive the loop: a task left pending when it
            # closes warns later, in whatever test the collector runs in.
            self._run(_finish_tasks())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    @property
    def chat(self) -> ChatService:
        return self.replicas[0].chat

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.replicas[0].chat, name)
        if name in READS or name.startswith("_") or not callable(attr):
            return attr
        signature = inspect.signature(attr)

        def call(*args: Any, **kwargs: Any) -> Outcome:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return self._call(name, list(bound.args))
        return call

    def _call(self, method: str, args: list[Any]) -> Outcome:
        first = self.replicas[0]
        self._events = [[], []]
        try:
            out: Outcome = self._run(first.call(method, *args))
        finally:
            self._run(self._settle())
        result = Outcome(reply=out.reply, emits=list(self._events[0]), audits=out.audits)
        # The other replica applied the same command: same events, same state.
        assert _plain(self._events[1]) == _plain(self._events[0]), method
        self._calls += 1
        if self._calls % STATE_CHECK_EVERY == 0:
            self.check_same_state(method)
        return result

    async def _settle(self) -> None:
        """Until both replicas applied everything in the log and sent their rounds."""
        first, second = self.replicas
        while second._last_id != first._last_id or first._rounds or second._rounds:  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def _nothing() -> None:
    return None


async def _finish_tasks() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    if others:
        await asyncio.wait(others, timeout=FINISH_BOUND_SECS)


def _plain(emits: list[Emit]) -> str:
    return codec.dumps([(e.event, e.payload, list(e.to)) for e in emits])


def state_of(live: ReplicatedLive) -> str:
    return codec.dumps({k: v for k, v in vars(live.chat).items() if k not in NOT_STATE})
