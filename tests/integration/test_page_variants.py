"""The youth page per language over real HTTP: the server picks the variant
the build wrote for the browser's Accept-Language (q-values honoured, default
Swedish), says so in Vary, stores nothing and sets no cookie, and gives every
variant the CSP that allows its early quick exit. One fake build (its manifest
names the variants, as web_client/build.mjs writes it) and the repository's
own dist/ when it is built."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from tests.conftest import free_port, make_settings, start_server

REPO_DIST = Path(__file__).resolve().parents[2] / "web_client" / "dist"
EARLY = "window.x=1"
EARLY_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(EARLY.encode()).digest()).decode() + "'"


def _page(lang: str, direction: str, heading: str) -> str:
    return (f'<!doctype html><html lang="{lang}" dir="{direction}"><head><script>{EARLY}</script>'
            f'</head><body><main id="main"><h1>{heading}</h1></main></body></html>\n')


def _fake_build(root: Path) -> Path:
    root.mkdir(parents=True)
    pages = {"index.html": _page("sv", "ltr", "Innan du börjar"),
             "index.en.html": _page("en", "ltr", "Before you start"),
             "index.ar.html": _page("ar", "rtl", "قبل أن تبدأ")}
    for name, text in pages.items():
        (root / name).write_text(text, encoding="utf-8")
    # A pre-compressed sibling: Vary must then name both headers.
    (root / "index.en.html.gz").write_bytes(gzip.compress(pages["index.en.html"].encode()))
    (root / "console.html").write_text("<!doctype html><title>c</title>\n", encoding="utf-8")
    manifest = {
        "csp_script_hashes": {name: [EARLY_HASH] for name in pages},
        "page_variants": {"index.html": {"sv": "index.html", "en": "index.en.html",
                                         "ar": "index.ar.html"}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


async def _get(url: str, headers: dict[str, str]) -> tuple[int, CIMultiDictProxy[str], str]:
    async with aiohttp.ClientSession(auto_decompress=True) as http:
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            return resp.status, resp.headers, await resp.text()


@pytest.mark.parametrize(("accept", "lang", "heading"), [
    (None, "sv", "Innan du börjar"),
    ("sv-SE,sv;q=0.9", "sv", "Innan du börjar"),
    ("en-US,en;q=0.9", "en", "Before you start"),
    ("de-DE,ar;q=0.3,en;q=0.2", "ar", "قبل أن تبدأ"),
    ("en;q=0, ar;q=0", "sv", "Innan du börjar"),
    ("xx-YY", "sv", "Innan du börjar"),
])
async def test_the_page_in_the_language_the_browser_asks_for(
        tmp_path: Path, accept: str | None, lang: str, heading: str) -> None:
    static = _fake_build(tmp_path / "dist")
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             static_dir=str(static))
    runner, server = await start_server(settings)
    try:
        headers = {"Accept-Encoding": "gzip"}
        if accept is not None:
            headers["Accept-Language"] = accept
        status, got, body = await _get(server.url + "/", headers)
        assert status == 200
        assert f'<html lang="{lang}"' in body and f"<h1>{heading}</h1>" in body
        vary = {v.strip() for v in ",".join(got.getall("Vary", [])).split(",") if v.strip()}
        assert "Accept-Language" in vary
        if lang == "en":  # served from the .gz sibling
            assert got["Content-Encoding"] == "gzip" and "Accept-Encoding" in vary
        assert got["Cache-Control"] == "no-store, max-age=0"
        assert "Set-Cookie" not in got and "ETag" not in got
        assert f"script-src 'self' {EARLY_HASH};" in got["Content-Security-Policy"]
        # Only the youth page has variants: the console is not chosen by language.
        status, got, _ = await _get(server.url + "/console", {"Accept-Language": "en"})
        assert status == 200 and "Accept-Language" not in got.get("Vary", "")
        # A variant is not a page of its own: no path leads to it but "/".
        status, _, _ = await _get(server.url + "/index.en.html", {})
        assert status == 404
    finally:
        await runner.cleanup()


def _built() -> dict[str, str]:
    manifest_path = REPO_DIST / "manifest.json"
    if not manifest_path.is_file():
        pytest.fail("web_client/dist is not built (cd web_client && node build.mjs)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return dict(manifest["page_variants"]["index.html"])


async def test_the_built_youth_page_has_a_variant_per_catalog_language(tmp_path: Path) -> None:
    """Every folder in src/i18n gives a variant; each is served for its own
    language, with lang/dir and its own safety heading in the HTML itself."""
    variants = _built()
    i18n = REPO_DIST.parent / "src" / "i18n"
    codes = sorted(d.name for d in i18n.iterdir() if d.is_dir())
    assert sorted(variants) == codes and variants["sv"] == "index.html"
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             static_dir=str(REPO_DIST))
    runner, server = await start_server(settings)
    try:
        for code, name in sorted(variants.items()):
            youth = json.loads((i18n / code / "youth.json").read_text(encoding="utf-8"))
            meta = json.loads((i18n / code / "meta.json").read_text(encoding="utf-8"))
            heading = youth.get("safety", {}).get("heading")
            status, _, body = await _get(server.url + "/", {"Accept-Language": f"{code};q=0.8"})
            assert status == 200, code
            assert body == (REPO_DIST / name).read_text(encoding="utf-8"), code
            assert re.search(rf'<html lang="{code}" dir="{meta["dir"]}">', body), code
            if heading:
                assert f'<h1 tabindex="-1">{heading}</h1>' in body.replace("&#39;", "'"), code
    finally:
        await runner.cleanup()
