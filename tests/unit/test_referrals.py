"""The referral partner directory: the shipped data, search and the loader's checks."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from chatserver.domain.referrals import (
    KINDS,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    Directory,
    Partner,
    fold,
    load_directory,
    resolve_path,
)
from chatserver.errors import BadPayload
from chatserver.settings import REPO_ROOT, ConfigError, Settings

SHIPPED = REPO_ROOT / "config" / "partners.toml"

# The county's 26 municipalities, as listed in the centre's documents
# (docs/mission.md, "The partner network"). They finance the centre
# and each names a contact person: each must have its social services here.
STOCKHOLM_COUNTY = (
    "Botkyrka", "Danderyd", "Ekerö", "Haninge", "Huddinge", "Järfälla", "Lidingö", "Nacka",
    "Norrtälje", "Nykvarn", "Nynäshamn", "Salem", "Sigtuna", "Sollentuna", "Solna",
    "Stockholm", "Sundbyberg", "Södertälje", "Tyresö", "Täby", "Upplands Väsby",
    "Upplands-Bro", "Vallentuna", "Vaxholm", "Värmdö", "Österåker",
)

GOOD_ENTRY = """
[[partner]]
code = "{code}"
name = "{name}"
kind = "{kind}"
municipality = "{municipality}"
phone = "{phone}"
url = "https://example.org/"
hours = {{ sv = "Vardagar 08–16", en = "Weekdays 08–16" }}
notes = "{notes}"
"""


def entry(code: str = "soc-malmo", name: str = "Socialtjänsten Malmö",
          kind: str = "social_services", municipality: str = "Malmö",
          phone: str = "040-34 10 00", notes: str = "") -> str:
    return GOOD_ENTRY.format(code=code, name=name, kind=kind, municipality=municipality,
                             phone=phone, notes=notes)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "partners.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> Directory:
    return load_directory(SHIPPED)


# ------------------------------------------------------------------ shipped data


def test_shipped_file_loads_through_the_settings_default(shipped: Directory) -> None:
    assert resolve_path(Settings().partners_file) == SHIPPED
    assert len(load_directory(Settings().partners_file)) == len(shipped) > 26


def test_every_county_municipality_has_its_social_services(shipped: Directory) -> None:
    social = [p for p in shipped if p.kind == "social_services"]
    assert sorted(p.municipality for p in social) == sorted(STOCKHOLM_COUNTY)
    for p in social:
        assert p.name == f"Socialtjänsten {p.municipality}"
        assert p.code.startswith("soc-")


def test_county_list_matches_the_profile_choices_in_default_config() -> None:
    # The same 26 are what a youth can pick as "my municipality" for statistics.
    default = tomllib.loads((REPO_ROOT / "config" / "default.toml").read_text("utf-8"))
    listed = [m for m in default["service"]["profile"]["municipalities"] if m != "other"]
    assert sorted(listed) == sorted(STOCKHOLM_COUNTY)


def test_police_health_helplines_and_ngos_are_there(shipped: Directory) -> None:
    kinds = {p.kind for p in shipped}
    assert {"police", "health", "helpline", "ngo"} <= kinds <= set(KINDS)
    police = shipped.get("polisen")
    assert police is not None and police.phone == "114 14"
    emergency = shipped.get("akut-112")
    assert emergency is not None and emergency.phone == "112"
    by_name = {p.name: p for p in shipped}
    assert by_name["Kvinnofridslinjen"].phone == "020-50 50 50"
    assert by_name["1177 Vårdguiden"].phone == "1177"


def test_no_duplicate_codes_in_the_raw_file() -> None:
    raw = tomllib.loads(SHIPPED.read_text("utf-8"))["partner"]
    codes = [e["code"] for e in raw]
    assert len(codes) == len(set(codes))


def test_no_phone_number_is_made_of_placeholder_digits(shipped: Directory) -> None:
    for p in shipped:
        if not p.phone:
            continue
        digits = re.sub(r"\D", "", p.phone)
        assert 3 <= len(digits) <= 12, p.code
        assert len(set(digits)) > 1, p.code  # 000 00 00, 111 11 11
        assert not re.search(r"x|\?|#", p.phone, re.IGNORECASE), p.code
        for run in ("01234", "12345", "23456", "34567", "45678", "56789", "98765", "87654"):
            assert run not in digits, p.code  # 070-123 45 67 and friends
        assert not re.search(r"(\d)\1{6,}", digits), p.code  # seven of a kind


def test_no_shipped_entry_claims_a_check_nobody_made(shipped: Directory) -> None:
    # Only an operator marks an entry verified, in the running server.
    assert all(not p.verified and not p.verified_by for p in shipped)
    assert len(shipped.unverified()) == len(shipped)


def test_the_network_kinds_are_there_and_found_in_both_languages(shipped: Directory) -> None:
    kinds = {p.kind for p in shipped}
    assert {"socialjour", "shelter"} <= kinds
    shelters = {p.code for p in shipped if p.kind == "shelter"}
    for query in ("kvinnojour", "tjejjour", "shelter", "Women's shelter"):
        assert shelters <= {p.code for p in shipped.search(query, limit=MAX_LIMIT)}, query
    assert "socialjour-stockholm" in [p.code for p in shipped.search("out of hours")]
    jour = shipped.get("socialjour-stockholm")
    assert jour is not None and jour.phone == ""  # no number invented


def test_urls_are_https_and_codes_are_audit_safe(shipped: Directory) -> None:
    audit_detail = re.compile(r"^[A-Za-z0-9_.:@+-]{0,64}$")  # domain/audit.py
    for p in shipped:
        assert p.url == "" or p.url.startswith("https://"), p.code
        assert audit_detail.match(p.code), p.code
        assert {"sv", "en"} <= set(p.hours), p.code


def test_public_card_holds_exactly_the_card_fields(shipped: Directory) -> None:
    p = shipped.get("kvinnofridslinjen")
    assert p is not None
    card = p.public()
    assert set(card) == {"code", "name", "kind", "municipality", "phone", "url", "hours"}
    assert card["hours"]["sv"].startswith("Dygnet runt")
    assert json.loads(json.dumps(card)) == card  # plain JSON: no MappingProxy, no notes
    assert "notes" not in json.dumps(card) and "verified" not in json.dumps(card)
    staff = p.for_counsellor()
    assert staff["notes"] == p.notes and staff["verified_at"] == ""
    assert json.loads(json.dumps(staff)) == staff


# ------------------------------------------------------------------------ search


def test_search_is_accent_and_case_insensitive(shipped: Directory) -> None:
    assert [p.code for p in shipped.search("sodertalje")] == ["soc-sodertalje"]
    assert [p.code for p in shipped.search("SÖDERTÄLJE")] == ["soc-sodertalje"]
    assert [p.code for p in shipped.search("osteraker")] == ["soc-osteraker"]
    assert [p.code for p in shipped.search("upplands bro")] == ["soc-upplands-bro"]
    assert "polisen" in [p.code for p in shipped.search("Polis")]


def test_malmo_matches_malmo_with_diaeresis(tmp_path: Path) -> None:
    d = load_directory(write(tmp_path, entry() + entry(code="soc-lund", name="Socialtjänsten Lund",
                                                       municipality="Lund", phone="046-35 50 00")))
    assert [p.code for p in d.search("malmo")] == ["soc-malmo"]
    assert [p.code for p in d.search("Malmö")] == ["soc-malmo"]


def test_every_word_must_match_somewhere(shipped: Directory) -> None:
    # "socialtjänsten" is in the name, "botkyrka" in the municipality.
    assert [p.code for p in shipped.search("socialtjansten botkyrka")] == ["soc-botkyrka"]
    assert shipped.search("socialtjansten zzz") == []


def test_search_covers_notes_and_kind(shipped: Directory) -> None:
    assert "nkt-heder" in [p.code for p in shipped.search("hedersrelaterad brottslighet")]
    social = shipped.search("social services", limit=MAX_LIMIT)
    assert {p.code for p in social if p.kind == "social_services"} == \
        {p.code for p in shipped if p.kind == "social_services"}
    assert len([p for p in social if p.kind == "social_services"]) == 26


def test_filters(shipped: Directory) -> None:
    helplines = shipped.search("", kind="helpline", limit=MAX_LIMIT)
    assert helplines and all(p.kind == "helpline" for p in helplines)
    assert [p.code for p in shipped.search("", municipality="Värmdö")] == ["soc-varmdo"]
    assert [p.code for p in shipped.search("", municipality="varmdo")] == ["soc-varmdo"]
    assert shipped.search("polis", kind="ngo") == []
    assert shipped.search("", kind="social_services", municipality="Nacka")[0].code == "soc-nacka"


def test_unknown_kind_or_bad_types_are_refused(shipped: Directory) -> None:
    with pytest.raises(BadPayload):
        shipped.search("", kind="lawyers")
    with pytest.raises(BadPayload):
        shipped.search(None)  # type: ignore[arg-type]
    with pytest.raises(BadPayload):
        shipped.search("", limit="5")  # type: ignore[arg-type]


def test_empty_query_lists_all_by_municipality_then_name(shipped: Directory) -> None:
    everything = shipped.search("", limit=MAX_LIMIT)
    assert len(everything) == len(shipped)
    # County-wide and national partners first, then Swedish alphabetical order
    # (å, ä, ö after z): ... Sundbyberg, Södertälje ... Värmdö, Österåker.
    places = [p.municipality for p in everything]
    assert places[: places.index("Botkyrka")] == [""] * places.index("Botkyrka")
    assert places.index("Sundbyberg") < places.index("Södertälje") < places.index("Tyresö")
    assert places[-2:] == ["Värmdö", "Österåker"]
    national = [p.name for p in everything if not p.municipality]
    assert national == sorted(national, key=lambda n: fold(n))
    assert shipped.search("   ") == everything[:20]


def test_order_is_swedish_alphabetical(tmp_path: Path) -> None:
    # Å, Ä, Ö are the last three letters of the Swedish alphabet, in that order
    # (Unicode order would put Ä before Å); case does not matter.
    places = ["Örebro", "Åre", "Älvsbyn", "eslöv", "Ystad"]
    text = "".join(entry(code=f"soc-{i}", name=f"Socialtjänsten {m}", municipality=m)
                   for i, m in enumerate(places))
    d = load_directory(write(tmp_path, text))
    assert [p.municipality for p in d.search("")] == ["eslöv", "Ystad", "Åre", "Älvsbyn", "Örebro"]


def test_limit(shipped: Directory) -> None:
    assert len(shipped.search("")) == 20
    assert len(shipped.search("", limit=3)) == 3
    assert shipped.search("", limit=0) == []
    assert shipped.search("", limit=-5) == []
    assert len(shipped.search("", limit=10_000)) == min(len(shipped), MAX_LIMIT)


def test_query_is_capped(shipped: Directory) -> None:
    # Past the cap, nothing counts: the trailing word would otherwise match nothing.
    query = "polisen".ljust(MAX_QUERY_CHARS) + "zzz"
    assert "polisen" in [p.code for p in shipped.search(query)]
    assert shipped.search("polisen zzz") == []


def test_get(shipped: Directory) -> None:
    p = shipped.get("soc-botkyrka")
    assert p is not None and p.municipality == "Botkyrka"
    assert shipped.get("soc-gotham") is None
    assert shipped.get(None) is None  # type: ignore[arg-type]


def test_partner_is_immutable(shipped: Directory) -> None:
    p = shipped.get("polisen")
    assert p is not None
    with pytest.raises(AttributeError):
        p.phone = "070-000 00 00"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.hours["sv"] = "aldrig"  # type: ignore[index]


def test_directory_refuses_duplicate_codes_built_in_code() -> None:
    p = Partner("x-1", "X", "other", "", "112", "", {"sv": "a", "en": "b"})
    with pytest.raises(ConfigError, match="x-1"):
        Directory([p, p])


# -------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda t: t.replace('code = "soc-malmo"', 'code = "Soc Malmö"'), ["#2", "'code'"]),
        (lambda t: t.replace('code = "soc-malmo"', 'code = "x"'), ["#2", "'code'"]),
        (lambda t: t.replace('kind = "social_services"', 'kind = "lawyers"'),
         ["soc-malmo", "'kind'"]),
        (lambda t: t.replace('municipality = "Malmö"', 'municipality = ""'),
         ["soc-malmo", "'municipality'"]),
        (lambda t: t.replace('name = "Socialtjänsten Malmö"\n', ""), ["soc-malmo", "'name'"]),
        (lambda t: t.replace('phone = "040-34 10 00"', "phone = 4034100"),
         ["soc-malmo", "'phone'"]),
        (lambda t: t.replace('phone = "040-34 10 00"', 'phone = "040-XX XX XX"'),
         ["soc-malmo", "'phone'"]),
        (lambda t: t.replace('phone = "040-34 10 00"', 'phone = "12"'), ["soc-malmo", "'phone'"]),
        (lambda t: t.replace('url = "https://example.org/"', 'url = "http://example.org/"'),
         ["soc-malmo", "'url'"]),
        (lambda t: t.replace('en = "Weekdays 08–16"', 'ar = "x"'),
         ["soc-malmo", "'hours'", "'en'"]),
        (lambda t: t.replace('hours = {', 'hours = "always" #'), ["soc-malmo", "'hours'"]),
        (lambda t: t.replace('notes = ""', 'notes = ""\nretired = "no"'),
         ["soc-malmo", "'retired'"]),
        (lambda t: t.replace('notes = ""', 'notes = ""\nphnoe = "1"'), ["soc-malmo", "'phnoe'"]),
        (lambda t: t.replace('notes = ""', 'notes = ""\nverified_at = "2027-01-15T08:00:00Z"'),
         ["soc-malmo", "'verified_at'"]),
        (lambda t: t.replace('notes = ""', 'notes = ""\nwords = { sv = ["a;b"] }'),
         ["soc-malmo", "'words'"]),
        (lambda t: t.replace('notes = ""', 'notes = ""\ndistricts = "Norr"'),
         ["soc-malmo", "'districts'"]),
        (lambda t: t.replace('notes = ""', "notes = 3"), ["soc-malmo", "'notes'"]),
        (lambda t: t.replace('name = "Socialtjänsten Malmö"', 'name = " Socialtjänsten"'),
         ["soc-malmo", "'name'"]),
    ],
)
def test_a_bad_entry_is_named_with_its_field(
    tmp_path: Path, mutate: Callable[[str], str], names: list[str]
) -> None:
    # Given a good first entry and a broken second one
    first = entry(code="soc-lund", name="Socialtjänsten Lund", municipality="Lund",
                  phone="046-35 50 00")
    path = write(tmp_path, first + mutate(entry()))
    # When it is loaded, the error names the second entry and the field
    with pytest.raises(ConfigError) as caught:
        load_directory(path)
    message = str(caught.value)
    for name in names:
        assert name in message, message
    assert "soc-lund" not in message


def test_duplicate_code_names_both_entries(tmp_path: Path) -> None:
    path = write(tmp_path, entry() + entry(name="Socialtjänsten Malmö igen"))
    with pytest.raises(ConfigError, match=r"#2 'soc-malmo'.*#1"):
        load_directory(path)


def test_file_level_mistakes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_directory(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_directory(write(tmp_path, "[[partner]\ncode = "))
    with pytest.raises(ConfigError, match=r"no \[\[partner\]\]"):
        load_directory(write(tmp_path, "# empty\n"))
    with pytest.raises(ConfigError, match="partners"):
        load_directory(write(tmp_path, entry().replace("[[partner]]", "[[partners]]")))
    with pytest.raises(ConfigError, match=r"#1.*table"):
        load_directory(write(tmp_path, "partner = [1]\n"))


def test_good_file_with_optional_fields_left_out(tmp_path: Path) -> None:
    text = entry(code="kvinnofridslinjen", name="Kvinnofridslinjen", kind="helpline",
                 municipality="", phone="020-50 50 50").replace('notes = ""\n', "")
    d = load_directory(write(tmp_path, text))
    p = d.get("kvinnofridslinjen")
    assert p is not None and p.notes == "" and p.verified is False and p.retired is False
    assert p.public()["hours"] == {"sv": "Vardagar 08–16", "en": "Weekdays 08–16"}
