"""The live partner bank on a real SQLite store and audit log: seeding,
operators' changes (checked, audited, announced), another writer found by
version, the entry checks' error codes, and the TOML/CSV files."""

from __future__ import annotations

import csv
import io
import json
from contextlib import aclosing
from typing import Any

import pytest

from chatserver.domain.audit import AuditLog
from chatserver.domain.clock import FakeClock
from chatserver.domain.partner_bank import CARD_FIELDS, PartnerBank, audit_fields
from chatserver.domain.partner_files import parse, to_csv, to_toml
from chatserver.domain.referrals import KINDS, check_entry, load_directory
from chatserver.errors import (
    BadKind,
    BadPartner,
    BadPayload,
    BadPhone,
    NotAllowed,
    PartnerExists,
    UnknownPartner,
)
from chatserver.settings import REPO_ROOT, ConfigError
from chatserver.storage.sqlite import SqliteStore

KEY = bytes(32)
SHIPPED = REPO_ROOT / "config" / "partners.toml"


def entry(code: str = "tjejjour-x", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "code": code, "name": "Tjejjouren X", "name_en": "Girls' shelter X", "kind": "shelter",
        "municipality": "Solna", "districts": [], "phone": "", "url": "",
        "hours": {"sv": "Kvällar", "en": "Evenings"}, "notes": "",
        "words": {"sv": ["skyddat boende"], "en": ["safe house"]},
    }
    base.update(changes)
    return base


async def audit_rows(store: SqliteStore) -> list[tuple[str, str, dict[str, Any]]]:
    async with aclosing(store.iter_audit()) as entries:
        return [(e.actor, e.action, json.loads(e.detail)) async for e in entries]


@pytest.fixture
async def bank(store: SqliteStore, clock: FakeClock) -> PartnerBank:
    b = PartnerBank(store, AuditLog(store, clock, KEY), clock)
    await b.open(lambda: load_directory(SHIPPED).everything(), "system")
    return b


async def test_first_open_seeds_once_and_later_opens_read_the_database(
        store: SqliteStore, clock: FakeClock, bank: PartnerBank) -> None:
    shipped = load_directory(SHIPPED)
    assert len(bank.directory) == len(shipped) and bank.directory.version == 1
    # A second node (or a restart) with another seed does not seed again.
    other = PartnerBank(store, AuditLog(store, clock, KEY), clock)
    assert await other.open(lambda: [], "system") == 0
    assert len(other.directory) == len(shipped)
    assert [a for _, a, _ in await audit_rows(store)] == ["partners_seeded"]


async def test_add_edit_retire_verify_are_audited_and_announced(
        store: SqliteStore, clock: FakeClock, bank: PartnerBank) -> None:
    heard: list[int] = []

    async def listener(version: int) -> None:
        heard.append(version)

    bank.listen(listener)
    added = await bank.add("ops", entry())
    assert bank.directory.get("tjejjour-x") == added
    assert [p.code for p in bank.directory.search("tjejjour solna")] == ["tjejjour-x"]
    edited = await bank.edit("ops", "tjejjour-x", {k: v for k, v in entry(
        phone="08-123 40 00", notes="Ring först.").items() if k != "code"})
    assert edited.phone == "08-123 40 00" and not edited.verified
    clock.advance(60)
    verified = await bank.verify("ops", "tjejjour-x")
    assert verified.verified_by == "ops" and verified.verified_at.endswith("Z")
    # An edit of what only staff see (notes, search words) keeps the mark ...
    kept = await bank.edit("ops", "tjejjour-x", {k: v for k, v in entry(
        phone="08-123 40 00", notes="Ring först på morgonen.").items() if k != "code"})
    assert kept.verified_at == verified.verified_at and kept.verified_by == "ops"
    # ... but a change to the card a youth is given (here its address) takes
    # it away: "checked <date>" must not stand beside details nobody checked.
    again = await bank.edit("ops", "tjejjour-x", {k: v for k, v in entry(
        phone="08-123 40 00", notes="Ring först på morgonen.",
        url="https://example.org/").items() if k != "code"})
    assert again.verified_at == "" and again.verified_by == ""
    assert bank.directory.get("tjejjour-x") == again
    assert bank.directory.get("tjejjour-x") in bank.directory.unverified()
    await bank.set_retired("ops", "tjejjour-x", True)
    assert bank.directory.get("tjejjour-x") is None
    assert bank.directory.search("tjejjouren solna") == []
    assert bank.directory.lookup("tjejjour-x") is not None
    assert heard == [2, 3, 4, 5, 6, 7]
    rows = [r for r in await audit_rows(store) if r[1] != "partners_seeded"]
    assert rows == [
        ("ops", "partner_added", {"partner": "tjejjour-x", "role": "shelter"}),
        ("ops", "partner_edited", {"partner": "tjejjour-x", "fields": "phone+notes",
                                   "count": 2}),
        ("ops", "partner_verified", {"partner": "tjejjour-x"}),
        ("ops", "partner_edited", {"partner": "tjejjour-x", "fields": "notes", "count": 1}),
        ("ops", "partner_edited", {"partner": "tjejjour-x",
                                   "fields": "url+verified_by+verified_at", "count": 3}),
        ("ops", "partner_retired", {"partner": "tjejjour-x"}),
    ]
    # No free text reached the log: not the notes, not the number.
    assert "Ring" not in json.dumps(rows) and "123" not in json.dumps(rows)


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"code": "polisen"}, PartnerExists, None),
        ({"kind": "lawyers"}, BadKind, "kind"),
        ({"phone": "08-XX"}, BadPhone, "phone"),
        ({"phone": "12"}, BadPhone, "phone"),
        ({"url": "http://x.se/"}, BadPartner, "url"),
        ({"name": ""}, BadPartner, "name"),
        ({"name": "Två\nrader"}, BadPartner, "name"),
        ({"hours": {"sv": "Kväll"}}, BadPartner, "hours"),
        ({"verified_at": "2027-01-15T08:00:00Z"}, BadPartner, "verified_at"),
        ({"retired": True}, BadPartner, "retired"),
        ({"districts": ["x"] * 21}, BadPartner, "districts"),
    ],
)
async def test_bad_input_gets_its_code_and_changes_nothing(
        store: SqliteStore, bank: PartnerBank, change: dict[str, Any],
        error: type[Exception], field: str | None) -> None:
    before = await store.list_partners()
    with pytest.raises(error) as caught:
        await bank.add("ops", entry(**change))
    if field is not None:
        assert isinstance(caught.value, BadPartner) and caught.value.info == {"field": field}
    assert await store.list_partners() == before
    assert [a for _, a, _ in await audit_rows(store)] == ["partners_seeded"]


async def test_edits_of_unknown_or_retired_entries(bank: PartnerBank) -> None:
    with pytest.raises(UnknownPartner):
        await bank.edit("ops", "soc-gotham", {k: v for k, v in entry().items() if k != "code"})
    with pytest.raises(BadPayload):  # the code is in the path, never in the body
        await bank.edit("ops", "polisen", entry("polisen"))
    await bank.set_retired("ops", "polisen", True)
    with pytest.raises(NotAllowed):
        await bank.verify("ops", "polisen")
    restored = await bank.set_retired("ops", "polisen", False)
    assert bank.directory.get("polisen") == restored


async def test_a_change_by_another_writer_is_found_by_version(
        store: SqliteStore, clock: FakeClock, bank: PartnerBank, db_path: Any) -> None:
    heard: list[int] = []

    async def listener(version: int) -> None:
        heard.append(version)

    bank.listen(listener)
    assert await bank.refresh() is False
    async with SqliteStore.open(db_path) as cli_store:  # the CLI, another process
        other = PartnerBank(cli_store, AuditLog(cli_store, clock, KEY), clock)
        await other.open()
        await other.add("cli", entry())
    assert bank.directory.get("tjejjour-x") is None
    assert await bank.refresh() is True
    assert bank.directory.get("tjejjour-x") is not None and heard == [2]


def test_search_finds_kinds_and_words_in_swedish_and_english() -> None:
    from chatserver.domain.referrals import Directory

    d = Directory([check_entry(entry()),
                   check_entry(entry("polis-syd", kind="police", name="Polisen Syd",
                                     name_en="Police South", municipality="",
                                     districts=["Södertälje", "Nynäshamn"], words={}))])
    for query in ("kvinnojour", "tjejjour", "shelter", "safe house", "skyddat boende",
                  "girls shelter"):
        assert [p.code for p in d.search(query)] == ["tjejjour-x"], query
    for query in ("police", "polis", "nynashamn", "police south"):
        assert [p.code for p in d.search(query)] == ["polis-syd"], query
    assert set(KINDS) >= {"socialjour", "shelter", "legal", "protection", "interpreter"}


def test_audit_fields_stay_within_the_audit_limit() -> None:
    assert audit_fields(["phone", "url"]) == "phone+url"
    many = audit_fields(["name", "name_en", "kind", "municipality", "districts", "phone",
                         "url", "hours", "notes", "words"])
    assert len(many) <= 64 and many.endswith("+more")


def test_toml_and_csv_round_trip_every_field() -> None:
    shipped = list(load_directory(SHIPPED).everything())
    odd = check_entry({**entry("plus-1", phone="+46 8 123 40 00", notes="=SUM(A1)",
                               districts=["Norr", "Söder"]),
                       "retired": True, "verified_by": "ops",
                       "verified_at": "2027-01-15T08:00:00.000Z"})
    partners = [*shipped, odd]
    assert parse(to_toml(partners), "toml", "x.toml") == partners
    text = to_csv(partners)
    assert parse(text, "csv", "x.csv") == partners
    # A spreadsheet would run these as formulas: written with an apostrophe.
    row = next(r for r in csv.reader(io.StringIO(text)) if r[0] == "plus-1")
    assert "'+46 8 123 40 00" in row and "'=SUM(A1)" in row


def test_a_bad_file_names_the_entry_and_imports_nothing() -> None:
    text = to_csv([check_entry(entry()), check_entry(entry("b-2", kind="shelter"))])
    broken = text.replace("b-2,Tjejjouren X,Girls' shelter X,shelter",
                          "b-2,Tjejjouren X,Girls' shelter X,lawyers")
    with pytest.raises(ConfigError, match=r"#2 'b-2'.*'kind'"):
        parse(broken, "csv", "x.csv")
    with pytest.raises(ConfigError, match="first row"):
        parse("code,name\n", "csv", "x.csv")
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse("[[partner]\n", "toml", "x.toml")


def test_the_fields_that_take_the_mark_away_are_the_card_a_youth_is_given() -> None:
    # If public() ever gains a field, an edit of it must also take the mark away.
    card = check_entry({"code": "x-1", "name": "X", "kind": "other", "municipality": "",
                        "hours": {"sv": "a", "en": "b"}}).public()
    assert set(card) == {"code", *CARD_FIELDS}


async def test_an_import_that_changes_a_checked_card_takes_the_mark_away(
        bank: PartnerBank) -> None:
    # The annual check: export, a municipality answers with a new number, the
    # edited file is imported. The row still carries last year's mark, but
    # nobody has checked the new number with the partner.
    await bank.add("ops", entry(phone="08-123 40 00"))
    await bank.add("ops", entry("tjejjour-y", name="Tjejjouren Y"))
    await bank.verify("ops", "tjejjour-x")
    await bank.verify("ops", "tjejjour-y")
    rows = list(csv.DictReader(io.StringIO(to_csv(bank.directory.everything()))))
    for row in rows:
        if row["code"] == "tjejjour-x":
            row["phone"] = "08-123 99 99"
        if row["code"] == "tjejjour-y":
            row["notes"] = "Ny kontaktperson."  # staff-only: the mark stays
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    await bank.replace_all("cli", parse(out.getvalue(), "csv", "partners.csv"))
    x, y = bank.directory.get("tjejjour-x"), bank.directory.get("tjejjour-y")
    assert x is not None and x.phone == "08-123 99 99"
    assert x.verified_at == "" and x.verified_by == ""
    assert y is not None and y.notes == "Ny kontaktperson." and y.verified_by == "ops"
    # A file that marks the new details checked itself is taken at its word.
    rows = list(csv.DictReader(io.StringIO(to_csv(bank.directory.everything()))))
    for row in rows:
        if row["code"] == "tjejjour-x":
            row["phone"] = "08-123 77 77"
            row["verified_by"], row["verified_at"] = "ops", "2027-02-01T09:00:00Z"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    await bank.replace_all("cli", parse(out.getvalue(), "csv", "partners.csv"))
    x = bank.directory.get("tjejjour-x")
    assert x is not None and x.verified_at == "2027-02-01T09:00:00Z"


async def test_a_change_is_audited_even_if_announcing_it_fails(
        store: SqliteStore, bank: PartnerBank) -> None:
    # The change is committed before the consoles are told; a push that
    # fails (a broken listener) must not leave it out of the audit log.
    async def broken(version: int) -> None:
        raise RuntimeError("push failed")

    bank.listen(broken)
    with pytest.raises(RuntimeError):
        await bank.add("ops", entry())
    assert bank.directory.get("tjejjour-x") is not None
    assert ("ops", "partner_added", {"partner": "tjejjour-x", "role": "shelter"}) in \
        await audit_rows(store)
