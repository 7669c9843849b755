"""The built web client (web_client/dist), without a browser: the four pages
from one template, SRI on every asset, neutral names, no inline script or
style but the youth page's early quick exit (allowed by its published hash),
nothing fetched from another origin, no browser storage API in the
youth bundle, complete catalogs, size budget, and a deterministic build."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.browser.conftest import DIST, REPO, require

WEB = REPO / "web_client"
PAGES = ("index.html", "console.html", "operator.html", "join.html")
# Everything the youth page makes a browser fetch, as the bytes the server
# sends with brotli: a cheap phone on slow 3G (build.mjs BUDGETS).
YOUTH_BUDGET_BYTES = 80_000
# Words that would give the page away in a file name, a title or a path.
REVEALING = re.compile(r"chat|help|hj[aä]lp|violence|v[aå]ld|heder|honou?r|stöd|support", re.I)


@pytest.fixture(scope="module")
def dist() -> None:
    require((DIST / "index.html").is_file(), "web_client/dist is not built")


def _assets(html: str) -> list[tuple[str, str]]:
    return re.findall(r'(?:src|href)="/(assets/[^"]+)" integrity="([^"]+)"', html)


def test_every_asset_has_matching_sri_and_a_neutral_name(dist: None) -> None:
    for page in PAGES:
        html = (DIST / page).read_text(encoding="utf-8")
        assets = _assets(html)
        # The youth page's stylesheet is inline (allowed by its CSP hash): an
        # external one would hold its first paint back a round trip.
        youth = page == "index.html"
        assert len(assets) == (1 if youth else 2), f"{page}: the script and stylesheet, with SRI"
        for path, sri in assets:
            data = (DIST / path).read_bytes()
            assert sri == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
            assert re.fullmatch(r"assets/[0-9a-f]{20}\.(js|css)", path), path
        assert '<script type="module" src="/assets/' in html
        # The CSP allows no inline script or style and no other origin; the
        # youth page's early quick exit and early socket are its two inline
        # scripts, by their hashes.
        inline = re.findall(r"<script>(.*?)</script>", html, re.S)
        assert len(inline) == (2 if page == "index.html" else 0), page
        assert len(re.findall(r"<script", html)) == len(inline) + 1, page
        styles = re.findall(r"<style>(.*?)</style>", html, re.S)
        assert len(styles) == (1 if youth else 0), page
        if youth:
            manifest = json.loads((DIST / "manifest.json").read_text(encoding="utf-8"))
            assert manifest["csp_style_hashes"][page] == [_csp_hash(styles[0])]
            css = (WEB / "dist" / manifest["pages"][0]["css"]).read_text(encoding="utf-8")
            assert styles[0] == css  # the published stylesheet, verbatim
        html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
        assert not re.search(r"<style|\sstyle=|\son\w+=", html, re.I), page
        assert "http://" not in html and "https://" not in html, page
    for page in ("index.html", "join.html"):  # pages opened on personal phones
        title = re.search(r"<title>(.*?)</title>", (DIST / page).read_text(encoding="utf-8"))
        assert title and not REVEALING.search(title.group(1)), page
    for f in DIST.rglob("*"):
        assert not REVEALING.search(f.name), f
    assert (DIST / "favicon.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"


def test_every_page_is_written_from_the_one_template(dist: None) -> None:
    """src/pages/ holds one template; the build writes the four pages from it,
    each with its own classes, and the youth page alone with the quick-exit
    links (they work before any script runs) and without the robots meta."""
    assert sorted(p.name for p in (WEB / "src" / "pages").iterdir()) == ["template.html"]
    body = {"index.html": "youth", "console.html": "staff", "operator.html": "staff operator",
            "join.html": "staff liaison"}
    for page in PAGES:
        html = (DIST / page).read_text(encoding="utf-8")
        youth = page == "index.html"
        assert html.startswith('<!doctype html>\n<html lang="sv" dir="ltr">\n<head>\n'), page
        assert f'<body class="{body[page]}">' in html, page
        bar_class = "bar" if youth else "bar staff-bar"
        assert f'<header id="bar" class="{bar_class}">' in html, page
        # The youth page's first screen is in the HTML (language variants, below).
        first = '<main id="main" tabindex="-1"><h1 tabindex="-1">' if youth else (
            '<main id="main" tabindex="-1"><p class="boot">')
        assert first in html, page
        assert ('<meta name="robots" content="noindex, nofollow">' in html) is not youth, page
        assert ('<a id="qx" class="qx" href="/exit" rel="noreferrer" title="'
                in html) is youth, page
        assert ('<a id="qx-link" class="sr-exit" href="/exit" rel="noreferrer" data-quick-exit>'
                in html) is youth
        # minified code and CSS have }}
        markup = re.sub(r"<(script|style)>.*?</\1>", "", html, flags=re.S)
        assert "{{" not in markup and "}}" not in markup, page
        assert "\n\n" not in html, page  # a line left empty by a section is dropped


def test_manifest_lists_every_file_with_its_hash(dist: None) -> None:
    manifest = json.loads((DIST / "manifest.json").read_text(encoding="utf-8"))
    every = {str(p.relative_to(DIST)) for p in DIST.rglob("*") if p.is_file()}
    compressed = {f for f in every if f.endswith((".gz", ".br"))}
    files = every - compressed - {"manifest.json"}
    assert set(manifest["files"]) == files
    for rel, meta in manifest["files"].items():
        assert hashlib.sha256((DIST / rel).read_bytes()).hexdigest() == meta["sha256"]
    # The pre-compressed siblings are the same files (the browser checks SRI on
    # what it decompressed), so the manifest publishes the originals only.
    assert compressed and {f[:-3] for f in compressed} <= files | {"manifest.json"}
    for rel in (f for f in compressed if f.endswith(".gz")):
        assert gzip.decompress((DIST / rel).read_bytes()) == (DIST / rel[:-3]).read_bytes()


@pytest.mark.parametrize("page", ["index.html", "join.html"])
def test_youth_and_liaison_bundles_use_no_storage_and_no_html_injection(
        dist: None, page: str) -> None:
    html = (DIST / page).read_text(encoding="utf-8")
    js = next(p for p, _ in _assets(html) if p.endswith(".js"))
    code = (DIST / js).read_text(encoding="utf-8")
    for api in ("localStorage", "sessionStorage", "indexedDB", "document.cookie",
                "serviceWorker", "caches.open", "Notification", "window.open",
                "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                "createObjectURL", "location.href="):
        assert api not in code, (page, api)
    if page == "index.html":
        assert "location.replace" in code
    else:  # the invite secret leaves the address bar
        assert "history.replaceState" in code


def _sent(rel: str, encoding: str) -> int:
    """What the server sends for a file to a browser accepting `encoding`:
    the pre-compressed sibling if there is one, else the file."""
    sibling = DIST / f"{rel}.{encoding}"
    return (sibling if sibling.is_file() else DIST / rel).stat().st_size


def test_youth_page_fits_the_size_budget(dist: None) -> None:
    """The manifest's transfer figures are what dist/ really holds: the page,
    every file its HTML names, the favicon and anything its script loads on
    demand, as .br (or raw) bytes; the youth page's total is within budget."""
    manifest = json.loads((DIST / "manifest.json").read_text(encoding="utf-8"))
    # The youth page in every language it is written in (index.html, index.<lang>.html).
    youth_pages = sorted(p.name for p in DIST.glob("index*.html"))
    assert "index.html" in youth_pages
    assert manifest["budgets"] == dict.fromkeys(youth_pages, YOUTH_BUDGET_BYTES)
    every_page = sorted(p.name for p in DIST.glob("*.html"))
    assert set(PAGES) <= set(every_page) and sorted(manifest["transfer"]) == every_page
    for page in every_page:
        html = (DIST / page).read_text(encoding="utf-8")
        named = {m for m in re.findall(r'(?:src|href)="/([^"]+)"', html) if (DIST / m).is_file()}
        scripts = [DIST / m for m in named if m.endswith(".js")]
        loaded = {m for js in scripts for m in re.findall(r"/(assets/[0-9a-f]{20}\.\w+)",
                                                          js.read_text(encoding="utf-8"))}
        fetched = sorted({page, "favicon.ico"} | named | loaded)
        # page, script, stylesheet (inline on the youth pages), favicon
        assert len(fetched) >= (3 if page.startswith("index") else 4), page
        t = manifest["transfer"][page]
        assert t["files"] == fetched, page
        assert t["br"] == sum(_sent(f, "br") for f in fetched), page
        assert t["gzip"] == sum(_sent(f, "gz") for f in fetched), page
    for page in youth_pages:
        sent = manifest["transfer"][page]["br"]
        assert sent <= YOUTH_BUDGET_BYTES, f"{page} sends {sent} bytes (brotli)"


def test_no_page_needs_webassembly(dist: None) -> None:
    """The crypto is plain JavaScript (@noble), so no page compiles
    WebAssembly and the CSP allows none (no 'wasm-unsafe-eval')."""
    for page in PAGES:
        html = (DIST / page).read_text(encoding="utf-8")
        js = next(p for p, _ in _assets(html) if p.endswith(".js"))
        assert "WebAssembly" not in (DIST / js).read_text(encoding="utf-8"), page


def test_the_licences_name_what_the_bundles_hold(dist: None) -> None:
    """assets/licenses.txt lists every bundled package with its licence
    text: the crypto is @noble's, and no libsodium is left in any page."""
    text = (DIST / "assets" / "licenses.txt").read_text(encoding="utf-8")
    for pkg in ("@noble/ciphers", "@noble/curves", "@noble/hashes", "socket.io-client"):
        assert re.search(rf"^{re.escape(pkg)} [0-9.]+ \(MIT\)$", text, re.M), pkg
    assert "libsodium" not in text


def test_the_build_refuses_a_youth_page_over_budget(tmp_path: Path) -> None:
    """A copy of the web client whose youth script carries 120 kB that do not
    compress: the build stops, names the budget, and writes nothing."""
    require(shutil.which("node") is not None and (WEB / "node_modules").is_dir(),
            "node and web_client/node_modules are needed")
    work = tmp_path / "web"
    work.mkdir()
    shutil.copy(WEB / "build.mjs", work / "build.mjs")
    shutil.copy(WEB / "package.json", work / "package.json")
    shutil.copytree(WEB / "src", work / "src")
    (work / "node_modules").symlink_to(WEB / "node_modules")
    main = work / "src" / "youth" / "main.js"
    ballast = base64.b64encode(hashlib.shake_256(b"ballast").digest(90_000)).decode()
    main.write_text(main.read_text(encoding="utf-8") + f'\nexport const ballast = "{ballast}";\n',
                    encoding="utf-8")
    done = subprocess.run(["node", "build.mjs", "--out", str(work / "dist")], cwd=work,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert re.search(r"index(\.[a-z]+)?\.html: \d+ bytes transferred \(brotli\) is over its "
                     r"budget of 80000 bytes", done.stderr), done.stderr
    assert not (work / "dist").exists()


def test_catalogs_are_complete() -> None:
    """Swedish is the reference: every section a language has holds every key."""
    def keys(node: object, prefix: str = "") -> set[str]:
        if isinstance(node, dict):
            return set().union(*(keys(v, f"{prefix}.{k}" if prefix else k)
                                 for k, v in node.items()))
        return {prefix}

    cats = {d.name: {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in d.glob("*.json")}
            for d in (WEB / "src" / "i18n").iterdir() if d.is_dir()}
    assert {"sv", "en", "ar"} <= set(cats)
    assert cats["ar"]["meta"]["dir"] == "rtl"
    for code, cat in cats.items():
        assert cat["meta"]["lang"] == code
        assert "youth" in cat, f"{code} has no youth catalog"
        for section, texts in cat.items():
            if section == "meta":
                continue
            missing = keys(cats["sv"][section]) - keys(texts)
            assert not missing, f"{code}/{section}.json lacks keys: {sorted(missing)}"
    for section in ("staff", "operator", "liaison"):
        assert section in cats["en"], f"en lacks the {section} catalog"
    # Every configured profile code has a label in every catalog (municipalities
    # are proper names); every chat language also has a name on every staff page.
    profile = tomllib.loads((REPO / "config" / "default.toml").read_text(encoding="utf-8"))[
        "service"]["profile"]
    for list_key in ("languages", "age_bands", "genders", "topics"):
        for code in profile[list_key]:
            for lang, cat in cats.items():
                assert code in cat["youth"]["codes"][list_key], (lang, list_key, code)
    for code in profile["languages"]:
        for lang, cat in cats.items():
            if "staff" in cat:
                assert code in cat["staff"]["languages"], (lang, "staff.languages", code)
    # The server accepts exactly the youth pages the build ships (start.page_language).
    assert sorted(profile["page_languages"]) == sorted(cats)
    assert set(profile["page_languages"]) <= set(profile["languages"])


def test_review_notes_are_published_not_shown(dist: None) -> None:
    """A machine-made catalog says so in meta.json ("review"); the build
    publishes it in the manifest and keeps it out of every page and bundle."""
    manifest = json.loads((DIST / "manifest.json").read_text(encoding="utf-8"))
    for d in sorted((WEB / "src" / "i18n").iterdir()):
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        assert set(meta) <= {"lang", "name", "dir", "review"}, d.name
        assert manifest["catalogs"][d.name].get("review") == meta.get("review"), d.name
    reviews = {m["review"] for m in manifest["catalogs"].values() if "review" in m}
    assert {"fa", "so", "prs", "ckb", "ti", "ar"} <= {
        code for code, m in manifest["catalogs"].items() if "review" in m}
    for f in DIST.rglob("*"):
        if f.suffix in (".js", ".html"):
            text = f.read_text(encoding="utf-8")
            assert not any(r in text for r in reviews), f
            assert '"review"' not in text, f


def test_build_is_deterministic() -> None:
    node = shutil.which("node")
    require(node is not None and (WEB / "node_modules" / "esbuild").is_dir(),
            "node and web_client/node_modules are needed (npm ci in web_client/)")
    assert node is not None
    out = subprocess.run([node, "build.mjs", "--check"], cwd=WEB, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "deterministic" in out.stdout


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def test_the_early_quick_exit_is_inline_in_head_and_its_hash_is_published(dist: None) -> None:
    """The youth page's quick exit works from the first bytes of HTML: an
    inline script in <head>, the first script, before the stylesheet (a classic
    script waits for stylesheets above it) and the bundle. Right behind it the
    early socket (opened while the bundle downloads). The manifest publishes
    both CSP hashes for the server; no other page has one."""
    html = (DIST / "index.html").read_text(encoding="utf-8")
    head = html.split("</head>", 1)[0]
    scripts = re.findall(r"<script>(.*?)</script>", head, re.S)
    assert len(scripts) == 2
    exit_script, socket_script = scripts
    assert head.index("<script>") < head.index("<style>") < head.index('<script type="module"')
    assert "location.replace(" in exit_script and "location.href" not in exit_script
    assert "new WebSocket(" in socket_script and "WebSocket" not in exit_script
    manifest = json.loads((DIST / "manifest.json").read_text(encoding="utf-8"))
    # ... for the youth page in every language it is written in, and no other page.
    youth = set(manifest["page_variants"]["index.html"].values())
    assert manifest["csp_script_hashes"] == {
        name: [_csp_hash(exit_script), _csp_hash(socket_script)] for name in youth}


def test_the_build_refuses_any_other_inline_script(tmp_path: Path) -> None:
    """A copy of the web client whose template gains one more inline script,
    an event-handler attribute or a <style> block other than the youth page's
    own stylesheet: the build stops and writes nothing."""
    require(shutil.which("node") is not None and (WEB / "node_modules").is_dir(),
            "node and web_client/node_modules are needed")
    for extra in ("<script>console.log(1)</script>", '<p onclick="x()">x</p>',
                  "<style>.qx{display:none}</style>"):
        work = tmp_path / f"web{len(extra)}"
        work.mkdir()
        shutil.copy(WEB / "build.mjs", work / "build.mjs")
        shutil.copy(WEB / "package.json", work / "package.json")
        shutil.copytree(WEB / "src", work / "src")
        (work / "node_modules").symlink_to(WEB / "node_modules")
        template = work / "src" / "pages" / "template.html"
        template.write_text(template.read_text(encoding="utf-8").replace(
            "</head>", extra + "\n</head>"), encoding="utf-8")
        done = subprocess.run(["node", "build.mjs", "--out", str(work / "dist")], cwd=work,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode != 0, extra
        assert "inline script or style" in done.stderr, done.stderr
        assert not (work / "dist").exists()


def test_the_youth_page_is_written_per_language_with_its_safety_page(dist: None) -> None:
    """One youth page per language folder in src/i18n: index.html is Swedish,
    index.<code>.html the others, each with lang/dir, its title, the exit
    texts and the safety page in that language in the HTML itself (so it
    reads before the script arrives), the same early exit and assets, and
    no markup the CSP would block. The manifest names them for the server."""
    manifest = json.loads((DIST / "manifest.json").read_text(encoding="utf-8"))
    codes = sorted(d.name for d in (WEB / "src" / "i18n").iterdir() if d.is_dir())
    variants = manifest["page_variants"]["index.html"]
    assert sorted(variants) == codes
    sv = (DIST / "index.html").read_text(encoding="utf-8")
    for code in codes:
        name = "index.html" if code == "sv" else f"index.{code}.html"
        assert variants[code] == name
        html = (DIST / name).read_text(encoding="utf-8")
        meta = json.loads((WEB / "src" / "i18n" / code / "meta.json").read_text(encoding="utf-8"))
        youth = json.loads((WEB / "src" / "i18n" / code / "youth.json").read_text(encoding="utf-8"))
        assert html.startswith(f'<!doctype html>\n<html lang="{code}" dir="{meta["dir"]}">'), code
        assert "interactive-widget=resizes-content" in html, code
        safety = youth.get("safety", {})
        for key in ("heading", "exit_body", "report_body"):
            if key in safety:
                assert _html_text(safety[key]) in html, (code, key)
        if "title" in youth:
            assert f"<title>{_html_text(youth['title'])}</title>" in html, code
        assert '<button type="button" class="primary" id="go-on" disabled>' in html, code
        assert f'<option value="{code}" lang="{code}" dir="{meta["dir"]}" selected>' in html
        assert manifest["csp_script_hashes"][name] == manifest["csp_script_hashes"]["index.html"]
        assert _assets(html) == _assets(sv), code
        assert manifest["csp_style_hashes"][name] == manifest["csp_style_hashes"]["index.html"]
        assert html.count("<style>") == 1, code
        html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
        assert not re.search(r"<style|\sstyle=|\son\w+=", html, re.I), code
        assert (DIST / f"{name}.br").is_file() and (DIST / f"{name}.gz").is_file(), code


def _html_text(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))
