"""The append-only, keyed audit log (domain/audit.py, crypto/audit_chain.py,
storage/sqlite.py), on real SQLite files: the chain, the key, the attacks a
database-only attacker can try, and logs from before the key (migration 0003)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from chatserver.crypto.audit_chain import (
    CHAIN_KEYED,
    CHAIN_UNKEYED,
    GENESIS,
    entry_hash,
    entry_mac,
)
from chatserver.domain.audit import AuditLog, AuditNotSealed, VerifyResult, utc_iso, verify
from chatserver.domain.clock import FakeClock
from chatserver.storage.audit_cuts import AuditCheckpoint, Cut, MakeCheckpoint
from chatserver.storage.base import AuditEntry, NextEntry
from chatserver.storage.sqlite import SqliteStore, _statements, migrations

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


# db_path, store and clock: tests/unit/conftest.py


async def _entries(store: SqliteStore) -> list[AuditEntry]:
    return [e async for e in store.iter_audit()]


async def _fill(db_path: Path, n: int = 5, key: bytes = KEY) -> list[AuditEntry]:
    clock = FakeClock()
    async with SqliteStore.open(db_path) as store:
        log = AuditLog(store, clock, key)
        for i in range(n):
            await log.record("anna", "claim", conversation=f"c-{i:08x}", count=i)
            clock.advance(1)
        return await _entries(store)


def _tamper(db_path: Path, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    """What someone with the file can do: drop the triggers, then rewrite rows."""
    con = sqlite3.connect(db_path)
    try:
        con.execute("DROP TRIGGER IF EXISTS audit_no_update")
        con.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        for statement in statements:
            sql, params = (statement, ()) if isinstance(statement, str) else statement
            con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def _rows(db_path: Path) -> list[AuditEntry]:
    con = sqlite3.connect(db_path)
    con.row_factory = sqlite3.Row
    try:
        return [AuditEntry(r["seq"], r["at"], r["actor"], r["action"], r["conversation"],
                           r["detail"], r["prev_hash"], r["hash"], r["chain"])
                for r in con.execute("SELECT * FROM audit ORDER BY seq")]
    finally:
        con.close()


def rechain_unkeyed(db_path: Path, edit: str | None = None, *, from_seq: int = 1,
                    to_seq: int | None = None, chain: int = CHAIN_UNKEYED) -> None:
    """The attack the unkeyed chain could not stop: edit a row (optional), then
    recompute the links of rows ``from_seq``..``to_seq`` (default: to the end)
    with the public hash. ``chain`` is the version the rewritten rows claim."""
    if edit:
        _tamper(db_path, edit)
    prev = GENESIS
    updates: list[tuple[str, tuple[object, ...]]] = []
    for e in _rows(db_path):
        if from_seq <= e.seq <= (to_seq or e.seq):
            link = entry_hash(prev, e.hashed_fields())
            updates.append(("UPDATE audit SET prev_hash = ?, hash = ?, chain = ? WHERE seq = ?",
                            (prev, link, chain, e.seq)))
            prev = link
        else:
            prev = e.hash
    _tamper(db_path, *updates)


def append_forged(db_path: Path, chain: int = CHAIN_KEYED) -> None:
    """Append an entry the way the unkeyed chain allowed: the next seq, the head
    as prev_hash and the public hash as its link, claiming ``chain``."""
    last = _rows(db_path)[-1]
    forged = AuditEntry(last.seq + 1, "2027-01-15T09:00:00.000Z", "anna", "login_ok", None,
                        "{}", last.hash, "", chain)
    link = entry_hash(last.hash, forged.hashed_fields())
    _tamper(db_path, ("INSERT INTO audit (seq, at, actor, action, conversation, detail,"
                      " prev_hash, hash, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (forged.seq, forged.at, forged.actor, forged.action, None, "{}",
                       forged.prev_hash, link, chain)))


def write_unkeyed_log(db_path: Path, n: int) -> list[str]:
    """A database as the code before the audit key left it: migrations 0001
    and 0002 only, and ``n`` entries chained with the unkeyed hash (the
    formula test_entry_hash_is_blake2b_over_prev_and_canonical_json pins).
    Returns the links."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db_path)
    links: list[str] = []
    try:
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT")
        for version, name, sql in migrations():
            if version >= 3:
                continue
            for statement in _statements(sql):
                con.execute(statement)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (version, name, "2027-01-01T00:00:00Z"))
        prev = GENESIS
        for seq in range(1, n + 1):
            fields = {"seq": seq, "at": f"2027-01-01T08:00:{seq:02d}.000Z", "actor": "cli",
                      "action": "account_added", "conversation": None,
                      "detail": f'{{"target":"u{seq}"}}'}
            link = entry_hash(prev, fields)
            con.execute("INSERT INTO audit (seq, at, actor, action, conversation, detail,"
                        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, fields["at"], "cli", "account_added", None, fields["detail"],
                         prev, link))
            links.append(link)
            prev = link
        con.commit()
    finally:
        con.close()
    return links


async def _verify_file(db_path: Path, expect_head: str | None = None,
                       key: bytes = KEY) -> VerifyResult:
    async with SqliteStore.open(db_path) as store:
        return await verify(store, key, expect_head)


def test_entry_hash_is_blake2b_over_prev_and_canonical_json() -> None:
    fields = {"seq": 1, "b": "ä", "a": None}
    expected = hashlib.blake2b(
        (GENESIS + '{"a":null,"b":"\\u00e4","seq":1}').encode(), digest_size=32
    ).hexdigest()
    assert entry_hash(GENESIS, fields) == expected
    assert entry_hash(GENESIS, {"a": None, "seq": 1, "b": "ä"}) == expected  # key order
    assert entry_hash("1" * 64, fields) != expected
    with pytest.raises(ValueError):
        entry_hash("short", fields)


def test_entry_mac_is_keyed_blake2b_over_the_same_bytes() -> None:
    fields = {"seq": 1, "b": "ä", "a": None}
    message = (GENESIS + '{"a":null,"b":"\\u00e4","seq":1}').encode()
    expected = hashlib.blake2b(message, digest_size=32, key=KEY,
                               person=b"audit-link-v2").hexdigest()
    assert entry_mac(KEY, GENESIS, fields) == expected
    # Neither the public hash nor the MAC under another key
    assert expected != entry_hash(GENESIS, fields)
    assert expected != entry_mac(OTHER_KEY, GENESIS, fields)
    with pytest.raises(ValueError):
        entry_mac(b"short", GENESIS, fields)


def test_the_log_refuses_a_key_of_the_wrong_size(store: SqliteStore, clock: FakeClock
                                                 ) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AuditLog(store, clock, b"")


async def test_entries_are_chained_and_verify(store: SqliteStore, clock: FakeClock) -> None:
    log = AuditLog(store, clock, KEY)
    first = await log.record("anna", "login_ok")
    clock.advance(2.5)
    second = await log.record("system", "conversation_end", conversation="c-1a2b3c4d",
                              reason="done", count=12)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    assert (first.chain, second.chain) == (CHAIN_KEYED, CHAIN_KEYED)
    assert second.hash == entry_mac(KEY, first.hash, second.hashed_fields())
    assert first.at == utc_iso(clock.now() - 2.5)
    assert second.at.endswith("Z") and second.at.startswith("2027-01-15T08:00:02.500")
    assert json.loads(second.detail) == {"reason": "done", "count": 12}
    assert second.detail == '{"count":12,"reason":"done"}'  # canonical form
    stored = await _entries(store)
    assert stored == [first, second]
    result = await verify(store, KEY)
    assert result.ok and result.rows == 2 and result.first_bad_seq is None
    assert result.head_hash == second.hash and result.unkeyed == 0


async def test_empty_log_verifies(store: SqliteStore) -> None:
    result = await verify(store, KEY)
    assert result.ok and result.rows == 0 and result.head_hash == GENESIS


async def test_concurrent_appends_keep_one_chain(store: SqliteStore, clock: FakeClock) -> None:
    log = AuditLog(store, clock, KEY)
    await asyncio.gather(*(log.record("system", "rate_limited", count=i) for i in range(40)))
    entries = await _entries(store)
    assert [e.seq for e in entries] == list(range(1, 41))
    assert (await verify(store, KEY)).ok


async def test_two_connections_to_one_file_keep_one_chain(db_path: Path) -> None:
    # The server and the CLI are separate processes with separate connections.
    async with SqliteStore.open(db_path) as a, SqliteStore.open(db_path) as b:
        log_a, log_b = AuditLog(a, FakeClock(), KEY), AuditLog(b, FakeClock(), KEY)
        await asyncio.gather(
            *(log.record("cli", "account_added", target=f"u{i}")
              for i in range(15) for log in (log_a, log_b))
        )
        result = await verify(a, KEY)
    assert result.ok and result.rows == 30


async def test_update_and_delete_are_refused_by_the_database(db_path: Path) -> None:
    await _fill(db_path, 3)
    con = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM audit WHERE seq = 2")
        con.rollback()
        assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 3
        assert con.execute("SELECT actor FROM audit WHERE seq = 2").fetchone()[0] == "anna"
    finally:
        con.close()


async def test_edited_row_is_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "UPDATE audit SET actor = 'someone_else' WHERE seq = 3")
    result = await _verify_file(db_path)
    assert not result.ok
    assert result.first_bad_seq == 3 and result.rows == 2
    assert "edited" in result.problem


async def test_edited_detail_is_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "UPDATE audit SET detail = '{\"count\":99}' WHERE seq = 4")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 4)


async def test_edited_row_relinked_with_the_key_still_breaks_the_next_link(
        db_path: Path) -> None:
    # Even the key's holder cannot change one entry alone: the next one's
    # prev_hash still names the old link.
    entries = await _fill(db_path)
    e = entries[2]
    forged = AuditEntry(e.seq, e.at, "someone_else", e.action, e.conversation, e.detail,
                        e.prev_hash, "", CHAIN_KEYED)
    new_link = entry_mac(KEY, e.prev_hash, forged.hashed_fields())
    _tamper(db_path, ("UPDATE audit SET actor = 'someone_else', hash = ? WHERE seq = 3",
                      (new_link,)))
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "prev_hash" in result.problem


async def test_deleted_middle_row_is_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "DELETE FROM audit WHERE seq = 3")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 3, 2)
    assert "missing" in result.problem


async def test_deleted_and_renumbered_rows_are_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "DELETE FROM audit WHERE seq = 3",
            "UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "prev_hash" in result.problem


async def test_reordered_rows_are_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "UPDATE audit SET seq = -1 WHERE seq = 2",
            "UPDATE audit SET seq = 2 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = -1")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 2)


async def test_truncated_tail_is_found_only_against_an_exported_head(db_path: Path) -> None:
    entries = await _fill(db_path)
    head = entries[-1].hash
    assert (await _verify_file(db_path, head)).ok
    _tamper(db_path, "DELETE FROM audit WHERE seq = 5")
    # The known limit: a shorter chain is still a valid chain ...
    assert (await _verify_file(db_path)).ok
    # ... and the head noted elsewhere shows what is gone.
    result = await _verify_file(db_path, head)
    assert not result.ok and result.first_bad_seq == 5
    assert "head" in result.problem


# ------------------------------------------------- attacks without the key
# Each of these passed `audit verify` while the chain was unkeyed.


async def test_edit_and_rechain_with_the_public_hash_is_caught(db_path: Path) -> None:
    await _fill(db_path)
    # The rewritten rows say what they are: unkeyed, after keyed ones.
    rechain_unkeyed(db_path, "UPDATE audit SET actor = 'someone_else' WHERE seq = 3",
                    from_seq=3)
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 3, 2)
    assert "unkeyed but follows keyed entries" in (result.problem or "")


async def test_edit_and_rechain_claiming_the_keyed_version_is_caught(db_path: Path) -> None:
    await _fill(db_path)
    rechain_unkeyed(db_path, "UPDATE audit SET actor = 'someone_else' WHERE seq = 3",
                    from_seq=3, chain=CHAIN_KEYED)
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "wrong MAC" in (result.problem or "")


async def test_rewriting_the_whole_log_with_the_public_hash_is_caught(db_path: Path) -> None:
    # The downgrade: every entry re-linked as if the log had never been keyed.
    await _fill(db_path)
    rechain_unkeyed(db_path, "UPDATE audit SET actor = 'someone_else' WHERE seq = 3")
    result = await _verify_file(db_path)
    assert not result.ok and result.first_bad_seq == 6
    assert "no keyed entry follows" in (result.problem or "")


@pytest.mark.parametrize("chain", [CHAIN_KEYED, CHAIN_UNKEYED])
async def test_an_appended_forged_entry_is_caught(db_path: Path, chain: int) -> None:
    await _fill(db_path)
    append_forged(db_path, chain)
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 6, 5)


async def test_another_key_fails_at_the_first_keyed_entry(db_path: Path) -> None:
    await _fill(db_path)
    result = await _verify_file(db_path, key=OTHER_KEY)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 1, 0)
    assert "not the key it was written with" in (result.problem or "")


async def test_an_unknown_chain_version_is_malformed(db_path: Path) -> None:
    await _fill(db_path, 2)
    # The CHECK constraint is the application's guard; the file's owner can
    # rebuild the table without it.
    _tamper(db_path, "PRAGMA ignore_check_constraints = ON",
            "UPDATE audit SET chain = 7 WHERE seq = 2")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "malformed" in (result.problem or "")


# ------------------------------------------------- logs from before the key


async def test_a_log_from_before_the_key_is_sealed_and_stays_verifiable(
        db_path: Path, clock: FakeClock) -> None:
    links = write_unkeyed_log(db_path, 3)
    async with SqliteStore.open(db_path) as store:  # applies migration 0003
        assert [e.chain for e in await _entries(store)] == [CHAIN_UNKEYED] * 3
        # Not yet sealed: nothing tells this apart from a downgraded log.
        unsealed = await verify(store, KEY)
        assert (unsealed.ok, unsealed.rows, unsealed.unkeyed) == (False, 3, 3)
        assert "no keyed entry follows the 3 unkeyed ones" in (unsealed.problem or "")

        log = AuditLog(store, clock, KEY)
        marker = await log.seal()
        assert marker is not None
        assert (marker.seq, marker.actor, marker.action, marker.chain) == (
            4, "system", "audit_keyed", CHAIN_KEYED)
        assert marker.prev_hash == links[-1]  # the last unkeyed head, under the key
        assert await log.seal() is None  # once
        await log.record("anna", "login_ok")
        result = await verify(store, KEY)
    assert (result.ok, result.rows, result.unkeyed) == (True, 5, 3)


async def test_the_sealed_unkeyed_part_cannot_be_rewritten(db_path: Path,
                                                            clock: FakeClock) -> None:
    write_unkeyed_log(db_path, 3)
    async with SqliteStore.open(db_path) as store:
        await AuditLog(store, clock, KEY).seal()
    # Entries 2..3 rewritten with the public hash, as the old chain allowed ...
    rechain_unkeyed(db_path, "UPDATE audit SET actor = 'someone' WHERE seq = 2",
                    from_seq=2, to_seq=3)
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "prev_hash" in (result.problem or "")
    # ... and pointing the keyed marker at the new head breaks its MAC.
    new_head = _rows(db_path)[2].hash
    _tamper(db_path, ("UPDATE audit SET prev_hash = ? WHERE seq = 4", (new_head,)))
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "wrong MAC" in (result.problem or "")


# ------------------------------------------------- verify's own resources


class _Watching:
    """The real store, counting its ``iter_audit`` generators still open."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.open_iterators = 0

    async def append_audit(self, next_entry: NextEntry) -> AuditEntry:
        return await self.store.append_audit(next_entry)

    async def audit_head(self) -> AuditEntry | None:
        return await self.store.audit_head()

    async def audit_checkpoints(self) -> list[AuditCheckpoint]:
        return await self.store.audit_checkpoints()

    async def cut_audit(self, before_at: str, make: MakeCheckpoint) -> Cut | None:
        return await self.store.cut_audit(before_at, make)

    async def iter_audit(self) -> AsyncGenerator[AuditEntry, None]:
        self.open_iterators += 1
        try:
            async for e in self.store.iter_audit():
                yield e
        finally:
            self.open_iterators -= 1


async def test_an_early_return_from_verify_closes_the_stores_cursor(db_path: Path) -> None:
    # verify stops at the first bad entry. Left open, the rest of the walk was
    # closed by the event loop after the CLI had closed the database, which
    # printed "Task exception was never retrieved" and a traceback.
    await _fill(db_path)
    _tamper(db_path, "UPDATE audit SET actor = 'someone_else' WHERE seq = 2")
    async with SqliteStore.open(db_path) as store:
        watching = _Watching(store)
        assert not (await verify(watching, KEY)).ok
        assert watching.open_iterators == 0


@pytest.mark.parametrize(
    "detail",
    [
        {"text": "hello"},  # not an allowed key
        {"message": "x"},
        {"reason": "I am scared, please help"},  # free text: spaces
        {"reason": "x" * 65},  # too long
        {"count": 1.5},
        {"reason": None},
        {"reason": ["done"]},
        {"reason": {"nested": "done"}},
        # A return-code row id: the key that joined an issued code to its
        # redemption, and so the counsellor to the returning youth.
        {"row": "0123456789abcdef"},
        {"reason": "rad\nbrytning"},
    ],
)
async def test_detail_allowlist(store: SqliteStore, clock: FakeClock,
                                detail: dict[str, object]) -> None:
    log = AuditLog(store, clock, KEY)
    with pytest.raises(ValueError) as info:
        await log.record("anna", "conversation_end", **detail)
    for value in detail.values():
        if isinstance(value, str) and value:
            assert value not in str(info.value)  # the refused value is not echoed
    assert await _entries(store) == []


async def test_allowed_detail_values(store: SqliteStore, clock: FakeClock) -> None:
    log = AuditLog(store, clock, KEY)
    e = await log.record("anna", "duty", on=True, capacity=3, reason="panic_exit",
                         target="bo.k-2", retry_after_secs=60, outcome="ok")
    assert json.loads(e.detail)["on"] is True


@pytest.mark.parametrize(
    ("actor", "action", "conversation"),
    [
        ("Anna Karlsson", "login_ok", None),  # not a username
        ("", "login_ok", None),
        ("anna", "Login OK", None),
        ("anna", "claim", "0123456789abcdef0123456789abcdef"),  # a wire id, not a pseudonym
        ("anna", "claim", "c-XYZ"),
    ],
)
async def test_actor_action_and_conversation_are_checked(
    store: SqliteStore, clock: FakeClock, actor: str, action: str, conversation: str | None
) -> None:
    with pytest.raises(ValueError):
        await AuditLog(store, clock, KEY).record(actor, action, conversation)
    assert await _entries(store) == []


async def test_a_keyed_log_replaced_by_unkeyed_entries_is_never_sealed_by_accident(
        db_path: Path, clock: FakeClock) -> None:
    # Given a keyed log
    async with SqliteStore.open(db_path) as store:
        log = AuditLog(store, clock, KEY)
        await log.record("anna", "login_ok")
    # When someone with the database alone rewrites it as an unkeyed history
    rechain_unkeyed(db_path, "UPDATE audit SET actor = 'someone' WHERE seq = 1")
    async with SqliteStore.open(db_path) as store:
        log = AuditLog(store, clock, KEY)
        # Then no append chains onto it (the server would have sealed it)
        with pytest.raises(AuditNotSealed):
            await log.record("mallory", "login_ok")
        assert await log.unsealed()
        # and sealing names the head noted before, which this one is not
        with pytest.raises(ValueError, match="not the head noted"):
            await log.seal(expect_head="0" * 64)
        assert (await verify(store, KEY)).ok is False


@pytest.mark.parametrize(("actor", "action", "conversation", "detail"), [
    ("anna\n", "login_ok", None, {}),  # "$" alone would let a trailing newline through
    ("anna", "login_ok\n", None, {}),
    ("anna", "referral", "c-1a2b3c4d\n", {}),
    ("anna", "partners_exported", None, {"format": "csv\n"}),
    ("anna", "referral", None, {"partner": "bris\n"}),
])
async def test_a_trailing_newline_is_refused_everywhere(
        store: SqliteStore, clock: FakeClock, actor: str, action: str,
        conversation: str | None, detail: dict[str, str]) -> None:
    log = AuditLog(store, clock, KEY)
    with pytest.raises(ValueError):
        await log.record(actor, action, conversation, **detail)
    assert await _entries(store) == []
