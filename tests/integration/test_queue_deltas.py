"""Queue views over real sockets (docs/protocol.md, "Queue views"): a
console gets its whole view once, then changes; what it builds from them is
what the server shows it; a console that lost a change asks `queue_sync`
at the next one and is whole again; off duty there is nothing to sync.
"""

from __future__ import annotations

from typing import Any

from chatserver.client.reference import CallFailed, ReferenceClient
from tests.conftest import LiveServer


async def _staff_id(server: LiveServer, client: ReferenceClient) -> int:
    staff = [s for s in server.ctx.conns.values() if s.staff is not None]
    assert len(staff) == 1
    assert staff[0].staff is not None
    return staff[0].staff.id


def _without_v(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "v"}


async def test_changes_rebuild_the_view_and_a_lost_one_is_repaired(live_server: LiveServer
                                                                   ) -> None:
    counsellor = await live_server.staff_client()
    staff_id = await _staff_id(live_server, counsellor)
    first = dict(counsellor.queue)
    assert first["entries"] == [] and isinstance(first["v"], int)  # the whole view at duty on
    youths = []

    def same() -> bool:
        return _without_v(counsellor.queue) == \
            live_server.ctx.chat.staff_queue_snapshot(staff_id)

    # One youth first and seen: a push that would carry every entry goes as a
    # whole view, so the later two (in one push or two) must arrive as changes.
    for want in (1, 3):
        while len(youths) < want:
            youth = await live_server.youth()
            youths.append((youth, (await youth.start())["conversation"]))
        await counsellor.wait_for(
            lambda n=want: len(counsellor.queue["entries"]) == n and same(), 5)
    assert counsellor.queue_changes >= 1 and counsellor.queue_resyncs == 0

    # Lose one change; the next does not fit, the console asks for the view again
    counsellor.drop_queue_deltas = 1
    await youths[0][0].leave()
    await counsellor.wait_for(lambda: counsellor.drop_queue_deltas == 0, 5)
    assert len(counsellor.queue["entries"]) == 3  # still the old view
    youth = await live_server.youth()
    await youth.start()
    await counsellor.wait_for(lambda: counsellor.queue_resyncs == 1 and
                              len(counsellor.queue["entries"]) == 3 and same(), 5)
    assert youths[0][1] not in [e["conversation"] for e in counsellor.queue["entries"]]

    # Off duty: nothing to sync
    await counsellor.duty(False)
    try:
        await counsellor.call("queue_sync", {})
    except CallFailed as exc:
        assert exc.code == "not_on_duty"
    else:
        raise AssertionError("queue_sync off duty succeeded")
    bad = await counsellor.call("queue_sync", {"all": True}, check=False)
    assert bad["error"] == "bad_payload"
