"""Audit retention on SQLite and PostgreSQL (``backend``, tests/unit/conftest.py):
entries older than the retention period go behind a checkpoint signed with
the audit key, ``verify`` starts from it, and the database still refuses
every other change. Design: docs/design/audit.md, "Retention"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatserver.domain.audit import AuditLog, verify
from chatserver.domain.audit_retention import DAY_SECS, prune
from chatserver.domain.clock import FakeClock
from chatserver.settings import REPO_ROOT, ConfigError, load_settings
from tests.unit.conftest import Backend

KEY = bytes(range(32))
OTHER_KEY = bytes(32)


async def sql(backend: Backend, store: Any, statement: str) -> None:
    """Run ``statement`` as someone with plain SQL access to the database."""
    if backend.name == "sqlite":
        await store._db.execute(statement)
        return
    async with store._pool.acquire() as con:
        await con.execute(statement)


async def actions(store: Any) -> list[tuple[int, str]]:
    return [(e.seq, e.action) async for e in store.iter_audit()]


async def history(store: Any, clock: FakeClock) -> AuditLog:
    """Entries 1-3 on day 0, 4-5 on day 400, 6 on day 800 (the clock's now)."""
    log = AuditLog(store, clock, KEY)
    for _ in range(3):
        await log.record("anna", "duty_on", on=True)
    clock.advance(400 * DAY_SECS)
    await log.record("anna", "claim", "c-00000001", waited_secs=3)
    await log.record("anna", "referral", "c-00000001", partner="p1", role="police")
    clock.advance(400 * DAY_SECS)
    await log.record("bo", "login_ok")
    return log


async def test_a_prune_with_nothing_old_does_nothing(any_store: Any) -> None:
    clock = FakeClock()
    log = await history(any_store, clock)
    # 900 days: even day 0 is younger than the cut-off.
    result = await prune(any_store, log, clock, KEY, 900)
    assert result.removed == 0
    assert len(await actions(any_store)) == 6  # and no audit_pruned entry
    assert await any_store.audit_checkpoints() == []
    assert (await verify(any_store, KEY)).pruned == 0


async def test_prune_cuts_behind_a_signed_checkpoint_and_verify_starts_there(
        any_store: Any) -> None:
    clock = FakeClock()
    log = await history(any_store, clock)
    result = await prune(any_store, log, clock, KEY, 730)
    assert (result.removed, result.through) == (3, 3)
    assert await actions(any_store) == [(4, "claim"), (5, "referral"), (6, "login_ok"),
                                        (7, "audit_pruned")]
    last = [e async for e in any_store.iter_audit()][-1]
    assert (last.actor, json.loads(last.detail)) == ("system", {"count": 3, "through": 3})
    [cp] = await any_store.audit_checkpoints()
    assert cp.seq == 3
    checked = await verify(any_store, KEY)
    assert checked.ok, checked.problem
    assert (checked.rows, checked.first_seq, checked.pruned) == (4, 4, 3)
    # The checkpoint is keyed: with another key it is not accepted.
    wrong = await verify(any_store, OTHER_KEY)
    assert not wrong.ok and "checkpoint" in (wrong.problem or "")
    # A second prune the same day finds nothing old any more.
    assert (await prune(any_store, log, clock, KEY, 730)).removed == 0
    # A year later, day 400's entries go too, behind a second checkpoint; the
    # head (day 800's prune record and after) always stays.
    clock.advance(365 * DAY_SECS)
    again = await prune(any_store, log, clock, KEY, 730)
    assert (again.removed, again.through) == (2, 5)
    assert [a for _, a in await actions(any_store)] == ["login_ok", "audit_pruned",
                                                        "audit_pruned"]
    assert [c.seq for c in await any_store.audit_checkpoints()] == [3, 5]
    assert (await verify(any_store, KEY)).ok


async def test_the_head_is_never_pruned(any_store: Any) -> None:
    clock = FakeClock()
    log = AuditLog(any_store, clock, KEY)
    await log.record("anna", "duty_on", on=True)
    await log.record("anna", "duty_off", on=False)
    clock.advance(1000 * DAY_SECS)
    result = await prune(any_store, log, clock, KEY, 730)
    assert (result.removed, result.through) == (1, 1)
    assert await actions(any_store) == [(2, "duty_off"), (3, "audit_pruned")]
    assert (await verify(any_store, KEY)).ok
    await log.record("anna", "duty_on", on=True)
    assert (await verify(any_store, KEY)).rows == 3


async def test_after_a_prune_the_database_still_refuses_other_changes(
        backend: Backend, any_store: Any) -> None:
    clock = FakeClock()
    log = await history(any_store, clock)
    await prune(any_store, log, clock, KEY, 730)
    for statement in ("DELETE FROM audit WHERE seq = 4", "DELETE FROM audit",
                      "UPDATE audit SET actor = 'x' WHERE seq = 5",
                      "DELETE FROM audit_checkpoint", "UPDATE audit_checkpoint SET seq = 6"):
        with pytest.raises(Exception, match="append-only"):
            await sql(backend, any_store, statement)
    # A checkpoint can only move forward.
    with pytest.raises(Exception, match="after the last checkpoint"):
        await sql(backend, any_store,
                  "INSERT INTO audit_checkpoint (seq, hash, at, mac) VALUES (2, 'x', 'y', 'z')")
    assert len(await actions(any_store)) == 4
    assert (await verify(any_store, KEY)).ok


async def test_a_forged_checkpoint_lets_sql_cut_but_verify_reports_it(
        backend: Backend, any_store: Any) -> None:
    clock = FakeClock()
    log = await history(any_store, clock)
    await prune(any_store, log, clock, KEY, 730)
    # Someone with SQL access but no audit key records a checkpoint at entry
    # 5 with its real link, then deletes entries 4 and 5: the trigger allows
    # it, and the chain from entry 6 even fits the checkpoint's link.
    [entry5] = [e async for e in any_store.iter_audit() if e.seq == 5]
    forged = ("INSERT INTO audit_checkpoint (seq, hash, at, mac) VALUES "  # noqa: S608 - hex from the test's own log
              f"(5, '{entry5.hash}', '2027-01-01T00:00:00.000Z', '{'0' * 64}')")
    await sql(backend, any_store, forged)
    await sql(backend, any_store, "DELETE FROM audit WHERE seq <= 5")
    result = await verify(any_store, KEY)
    assert not result.ok
    assert result.first_bad_seq == 5 and "wrong MAC" in (result.problem or "")


async def test_cutting_without_a_checkpoint_is_reported(backend: Backend,
                                                        any_store: Any) -> None:
    clock = FakeClock()
    log = await history(any_store, clock)
    await prune(any_store, log, clock, KEY, 730)
    # With the delete guard off (file or owner access), the front goes ...
    if backend.name == "sqlite":
        await sql(backend, any_store, "DROP TRIGGER audit_no_delete")
    else:
        await sql(backend, any_store, "ALTER TABLE audit DISABLE TRIGGER audit_no_delete")
    await sql(backend, any_store, "DELETE FROM audit WHERE seq = 4")
    front = await verify(any_store, KEY)
    assert not front.ok and "no retention checkpoint covers them" in (front.problem or "")
    # ... and so does a middle entry.
    await sql(backend, any_store, "DELETE FROM audit WHERE seq = 6")
    assert not (await verify(any_store, KEY)).ok


async def test_a_middle_cut_is_reported(backend: Backend, any_store: Any) -> None:
    clock = FakeClock()
    log = await history(any_store, clock)
    await prune(any_store, log, clock, KEY, 730)
    if backend.name == "sqlite":
        await sql(backend, any_store, "DROP TRIGGER audit_no_delete")
    else:
        await sql(backend, any_store, "ALTER TABLE audit DISABLE TRIGGER audit_no_delete")
    await sql(backend, any_store, "DELETE FROM audit WHERE seq = 5")
    result = await verify(any_store, KEY)
    assert not result.ok and result.first_bad_seq == 5 and "missing" in (result.problem or "")


@pytest.mark.parametrize("days", [0, 89, 3651])
def test_the_retention_setting_is_bounded(days: int, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="audit_retention_days"):
        load_settings(REPO_ROOT / "config" / "test.toml", env={},
                      overrides={"data_dir": str(tmp_path), "audit_retention_days": days})
    assert load_settings(REPO_ROOT / "config" / "test.toml", env={},
                         overrides={"data_dir": str(tmp_path)}).audit_retention_days == 730
