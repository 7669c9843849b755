"""Prometheus metrics for operators, served on a loopback-only port.

Aggregates only: no conversation id, pseudonym, alias or address is ever a
label. Read at scrape time from the live state, so nothing is double-kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatserver.domain.model import State
from chatserver.transport.context import Context

CONTENT_TYPE = "text/plain; version=0.0.4"


class ChatCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        chat = self.ctx.chat
        ops = chat.ops_snapshot()
        yield GaugeMetricFamily("chat_queue_length", "Conversations waiting",
                                value=ops["queue_length"])
        yield GaugeMetricFamily("chat_longest_wait_seconds", "Longest current wait",
                                value=ops["longest_wait_secs"])
        states = GaugeMetricFamily("chat_conversations", "Live conversations by state",
                                   labels=["state"])
        for state in (State.WAITING, State.ACTIVE, State.PAUSED):
            states.add_metric([state.value], sum(c.state is state
                                                 for c in chat.conversations.values()))
        yield states
        yield GaugeMetricFamily("chat_counsellors_on_duty", "Counsellors on duty and connected",
                                value=sum(1 for c in ops["counsellors"] if c["on_duty"]))
        conns = GaugeMetricFamily("chat_connections", "Open socket.io connections",
                                  labels=["kind"])
        staff = len(self.ctx.staff_sids())
        conns.add_metric(["staff"], staff)
        conns.add_metric(["youth"], len(self.ctx.conns) - staff)
        yield conns
        yield GaugeMetricFamily("chat_buffered_boxes", "Undelivered boxes held in RAM",
                                value=sum(m.inbox_count for c in chat.conversations.values()
                                          for m in c.members.values()))
        yield GaugeMetricFamily("chat_abandoned_today", "Left while waiting, this UTC day",
                                value=ops["abandoned_today"])
        yield CounterMetricFamily("chat_messages_relayed", "Sends accepted since start",
                                  value=chat.relayed)
        yield CounterMetricFamily("chatserver_audit_append_failures",
                                  "Audit entries that could not be written since start",
                                  value=self.ctx.audit_append_failures)
        yield GaugeMetricFamily("chatserver_live_state_up",
                                "1 when this node reaches the live state and has caught up "
                                "(always 1 embedded)", value=int(self.ctx.live.up()))
        sio = self.ctx.sio
        yield CounterMetricFamily("chat_binary_packets_refused",
                                  "Connections closed for sending a binary packet",
                                  value=sio.binary_refused if sio is not None else 0)
        admission = sio.admission if sio is not None else None
        if admission is not None:
            yield GaugeMetricFamily("chat_pending_handshakes",
                                    "Anonymous engine.io sessions not yet in a namespace",
                                    value=admission.pending_total)
            refused = CounterMetricFamily("chat_handshakes_refused",
                                          "Anonymous handshakes refused at a bound",
                                          labels=["reason"])
            for reason, count in admission.refused.items():
                refused.add_metric([reason], count)
            yield refused


def metrics_app(ctx: Context) -> web.Application:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ChatCollector(ctx))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def serve_metrics(ctx: Context) -> AsyncIterator[None]:
    """Run the metrics app on 127.0.0.1:metrics_port for the main app's lifetime."""
    if not ctx.settings.metrics_port:
        yield
        return
    runner = web.AppRunner(metrics_app(ctx), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ctx.settings.metrics_port).start()
    try:
        yield
    finally:
        await runner.cleanup()
