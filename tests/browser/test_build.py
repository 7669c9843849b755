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
from pathlib import Path

import pytest

from tests.browser.conftest import DIST, REPO, require

WEB = REPO / "web_client"
PAGES = ("index.html", "console.html", "operator.html", "join.html")
# Aim: ≤ 250 KB for the youth page, libsodium included: a cheap phone on a slow line.
YOUTH_GZIP_BUDGET = 250 * 1024
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
        assert len(assets) == 2, f"{page}: one script and one stylesheet, both with SRI"
        for path, sri in assets:
            data = (DIST / path).read_bytes()
            assert sri == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
            assert re.fullmatch(r"assets/[0-9a-f]{20}\.(js|css)", path), path
        assert '<script type="module" src="/assets/' in html
        # The CSP allows no inline script or style and no other origin; the
        # youth page's early quick exit is the one inline script, by its hash.
        inline = re.findall(r"<script>(.*?)</script>", html, re.S)
        assert len(inline) == (1 if page == "index.html" else 0), page
        assert len(re.findall(r"<script", html)) == len(inline) + 1, page
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
        assert '<main id="main" tabindex="-1"><p class="boot">' in html, page
        assert ('<meta name="robots" content="noindex, nofollow">' in html) is not youth, page
        assert ('<a id="qx" class="qx" href="/exit" rel="noreferrer" data-quick-exit>'
                in html) is youth, page
        assert ('<a id="qx-link" class="sr-exit" href="/exit" rel="noreferrer" data-quick-exit>'
                in html) is youth
        markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # minified code has }}
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


def test_youth_page_fits_the_size_budget(dist: None) -> None:
    html = (DIST / "index.html").read_text(encoding="utf-8")
    total = len(gzip.compress((DIST / "index.html").read_bytes(), 9))
    for path, _ in _assets(html):
        total += len(gzip.compress((DIST / path).read_bytes(), 9))
    assert total <= YOUTH_GZIP_BUDGET, f"youth page is {total / 1024:.1f} KiB gzipped"


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
    # Every configured profile code has a label (municipalities are proper names).
    config = (REPO / "config" / "default.toml").read_text(encoding="utf-8")
    for list_key in ("languages", "age_bands", "genders", "topics"):
        m = re.search(rf"^{list_key} = \[(.*?)\]", config, re.M | re.S)
        assert m, list_key
        for code in re.findall(r'"([^"]+)"', m.group(1)):
            for lang in ("sv", "en", "ar"):
                assert code in cats[lang]["youth"]["codes"][list_key], (lang, list_key, code)


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
    inline script in <head>, before the stylesheet (a classic script waits for
    stylesheets above it) and the bundle. The manifest publishes its CSP hash
    for the server; no other page has one."""
    html = (DIST / "index.html").read_text(encoding="utf-8")
    head = html.split("</head>", 1)[0]
    script = re.search(r"<script>(.*?)</script>", head, re.S)
    assert script is not None
    assert head.index("<script>") < head.index('<link rel="stylesheet"')
    assert "location.replace(" in script.group(1) and "location.href" not in script.group(1)
    manifest = json.loads((DIST / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["csp_script_hashes"] == {"index.html": [_csp_hash(script.group(1))]}


def test_the_build_refuses_any_other_inline_script(tmp_path: Path) -> None:
    """A copy of the web client whose template gains one more inline script,
    or an event-handler attribute: the build stops and writes nothing."""
    require(shutil.which("node") is not None and (WEB / "node_modules").is_dir(),
            "node and web_client/node_modules are needed")
    for extra in ("<script>console.log(1)</script>", '<p onclick="x()">x</p>'):
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
