"""The partner directory's part of the store contract, on SQLite and on
PostgreSQL alike (``backend``, tests/unit/conftest.py): versions, the
all-or-nothing writes, and several nodes seeding or writing at once."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from chatserver.errors import PartnerExists, UnknownPartner
from chatserver.storage.partners import PartnerRecord
from chatserver.storage.schema import COPY_COLUMNS
from tests.unit.conftest import Backend


def rec(code: str = "soc-malmo", **changes: Any) -> PartnerRecord:
    base = PartnerRecord(
        code=code, name_sv="Socialtjänsten Malmö", name_en="Social services Malmö",
        kind="social_services", municipality="Malmö", districts=("Norr", "Söder"),
        phone="040-34 10 00", url="https://malmo.se/", hours_sv="Vardagar", hours_en="Weekdays",
        notes="Be om mottagningen.", words_sv=("soc", "barn och unga"), words_en=("children",),
        retired=False, verified_by="", verified_at="")
    return dataclasses.replace(base, **changes)


async def test_an_unwritten_directory_is_version_0_and_empty(any_store: Any) -> None:
    assert await any_store.partner_version() == 0
    assert await any_store.list_partners() == (0, [])


async def test_add_round_trips_every_field_and_raises_the_version(any_store: Any) -> None:
    v1 = await any_store.add_partner(rec())
    v2 = await any_store.add_partner(rec("polisen", kind="police", municipality="",
                                         districts=(), words_sv=(), words_en=()))
    assert (v1, v2) == (1, 2)
    version, rows = await any_store.list_partners()
    assert version == 2 == await any_store.partner_version()
    assert [r.code for r in rows] == ["polisen", "soc-malmo"]
    assert rows[1] == rec(revision=1)  # lists and texts come back exactly
    assert rows[0].districts == () and rows[0].words_sv == ()


async def test_a_taken_code_is_refused_and_changes_nothing(any_store: Any) -> None:
    await any_store.add_partner(rec())
    with pytest.raises(PartnerExists):
        await any_store.add_partner(rec(name_sv="Någon annan"))
    version, rows = await any_store.list_partners()
    assert version == 1 and rows[0].name_sv == "Socialtjänsten Malmö"


async def test_update_replaces_the_row_and_an_unknown_code_changes_nothing(
        any_store: Any) -> None:
    await any_store.add_partner(rec())
    v = await any_store.update_partner(rec(phone="", retired=True, verified_by="ops",
                                           verified_at="2027-01-15T08:00:00.000Z"))
    assert v == 2
    _, rows = await any_store.list_partners()
    assert rows == [rec(phone="", retired=True, verified_by="ops",
                        verified_at="2027-01-15T08:00:00.000Z", revision=2)]
    with pytest.raises(UnknownPartner):
        await any_store.update_partner(rec("soc-gotham"))
    assert await any_store.partner_version() == 2  # the failed write took no version


async def test_replace_upserts_and_retires_what_it_does_not_name(any_store: Any) -> None:
    await any_store.add_partner(rec())
    await any_store.add_partner(rec("soc-lund", municipality="Lund"))
    version = await any_store.replace_partners([rec("soc-lund", phone="046-35 50 00"),
                                                rec("bris", kind="helpline")])
    assert version == 3
    _, rows = await any_store.list_partners()
    by_code = {r.code: r for r in rows}
    assert set(by_code) == {"bris", "soc-lund", "soc-malmo"}  # nothing deleted
    assert by_code["soc-malmo"].retired and by_code["soc-malmo"].revision == 3
    assert by_code["soc-lund"].phone == "046-35 50 00" and not by_code["soc-lund"].retired


async def test_replace_if_version_is_refused_when_the_directory_moved(any_store: Any) -> None:
    assert await any_store.replace_partners([rec()], if_version=0) == 1
    assert await any_store.replace_partners([rec("bris")], if_version=0) is None
    version, rows = await any_store.list_partners()
    assert version == 1 and [r.code for r in rows] == ["soc-malmo"]  # rolled back whole


async def test_several_nodes_seeding_at_once_seed_once(backend: Backend) -> None:
    stores = await asyncio.gather(*(backend.open() for _ in range(3)))
    try:
        results = await asyncio.gather(
            *(s.replace_partners([rec(f"seed-{i}")], if_version=0)
              for i, s in enumerate(stores)))
        assert sorted(results, key=lambda r: r or 0) == [None, None, 1]
        version, rows = await stores[0].list_partners()
        assert version == 1 and len(rows) == 1
    finally:
        for s in stores:
            await s.close()


async def test_two_nodes_writing_at_once_get_distinct_versions(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    try:
        versions = await asyncio.gather(
            *(a.add_partner(rec(f"a-{i}")) for i in range(10)),
            *(b.add_partner(rec(f"b-{i}")) for i in range(10)))
        assert sorted(versions) == list(range(1, 21))
        assert await b.list_partners() == (20, (await a.list_partners())[1])
    finally:
        await a.close()
        await b.close()


def test_store_copy_moves_the_directory_too() -> None:
    assert COPY_COLUMNS["partners"] == tuple(f.name for f in dataclasses.fields(PartnerRecord))
    assert COPY_COLUMNS["partner_directory"] == ("id", "version")
