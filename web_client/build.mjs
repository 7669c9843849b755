// Build the four pages into dist/ (git-ignored):
//
//   dist/index.html, console.html, operator.html,  pages with SRI on every asset,
//   join.html (the liaison page)                    all from src/pages/template.html
//   dist/index.<lang>.html                          the youth page in each other language
//   dist/assets/<sha256-prefix>.js|.css            content-hashed, neutral names
//   dist/favicon.ico                                a neutral "notes" icon
//   dist/manifest.json                              published hashes of every file, the
//                                                   CSP hashes of the youth page's inline
//                                                   script and stylesheet, its variants
//
// Deterministic: the same sources and lock file give byte-identical output
// (no timestamps, sorted inputs, esbuild and zlib are deterministic).
// Usage: node build.mjs [--out DIR] [--check]
//   --check  build twice into temporary directories and fail if they differ.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import * as esbuild from "esbuild";

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.join(ROOT, "src");
const I18N = path.join(SRC, "i18n");
const DEFAULT_LANG = "sv";

// The page list. Every page is written from the one template; what differs
// between them is here:
//   html                 the file in dist/ (chatserver/transport/http.py serves it)
//   js, css, section     the script entry, the stylesheet, the catalog section it gets
//   titleKey, loadingKey the <title> (neutral in every language) and the text
//                        shown until the script runs (default youth.loading)
//   bodyClass, barClass  the classes on <body> and the top bar (the stylesheets key on them)
//   noindex              a robots "noindex, nofollow" meta (every page but the youth's)
//   quickExit            the quick-exit link in the bar and the assistive-technology
//                        link after <main>: they work before any script runs; and
//                        the early exit script inline in <head> (EARLY_EXIT below)
//   perLanguage          one file per language of the page's section, with the first
//                        screen written into the HTML (see "language variants" below)
//   earlySocket          the youth's socket opened by an inline script in <head>, after
//                        the early exit, while the bundle downloads (EARLY_SOCKET below)
//   inlineStyle          the stylesheet inline in <head>, allowed by its CSP hash: an
//                        external one costs a round trip (2 s on slow 3G) before the
//                        first paint
const PAGES = [
  { html: "index.html", js: "youth/main.js", css: "youth.css", section: "youth", titleKey: "youth.title", bodyClass: "youth", barClass: "bar", quickExit: true, earlySocket: true, perLanguage: true, inlineStyle: true },
  { html: "console.html", js: "console/main.js", css: "staff.css", section: "staff", titleKey: "staff.console_title", bodyClass: "staff", barClass: "bar staff-bar", noindex: true },
  { html: "operator.html", js: "operator/main.js", css: "staff.css", section: "operator", titleKey: "staff.operator_title", bodyClass: "staff operator", barClass: "bar staff-bar", noindex: true },
  { html: "join.html", js: "liaison/main.js", css: "staff.css", section: "liaison", titleKey: "liaison.title", loadingKey: "liaison.loading", bodyClass: "staff liaison", barClass: "bar staff-bar", noindex: true },
];
const TEMPLATE = path.join(SRC, "pages", "template.html");
// The quick exit that works before the bundle has loaded. It is the one inline
// script the build lets through: the page carries it verbatim and the manifest
// publishes its CSP hash ('sha256-…'), which the server adds to that page's
// script-src (chatserver/transport/http.py). Any other inline script stops the
// build.
const EARLY_EXIT = path.join(SRC, "youth", "exit-early.js");
// The youth page's socket, opened inline while the bundle is on its way (one
// 2 s round trip less before the chat is ready on slow 3G), allowed the same
// way by its own published hash; the bundle takes it over (youth/socket-takeover.js).
const EARLY_SOCKET = path.join(SRC, "youth", "socket-early.js");

// Browsers on cheap phones: Android WebView/Chrome from ~2020, iOS 15 (esbuild
// cannot lower destructuring for Safari 14, which has a destructuring bug).
const TARGET = ["es2020", "chrome80", "firefox78", "safari15"];

function parseArgs(argv) {
  const args = { out: path.join(ROOT, "dist"), check: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") args.out = path.resolve(argv[++i]);
    else if (argv[i] === "--check") args.check = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

// --- catalogs ------------------------------------------------------------------

// One folder per language, one file per section:
//   src/i18n/<code>/meta.json      {lang, name, dir}
//   src/i18n/<code>/<section>.json youth, staff, operator, liaison (each optional
//                                  but youth; a language lists itself only on
//                                  the pages whose section it has)
// so a language can exist for the youth page alone, and texts for one page
// live apart from the others'.
const SECTIONS = ["youth", "staff", "operator", "liaison"];

function loadCatalogs() {
  const codes = fs.readdirSync(I18N, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const catalogs = {};
  for (const code of codes) {
    const dir = path.join(I18N, code);
    const read = (name) => JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"));
    const meta = fs.existsSync(path.join(dir, "meta.json")) ? read("meta.json") : {};
    if (meta.lang !== code || typeof meta.name !== "string" || !["ltr", "rtl"].includes(meta.dir)) {
      throw new Error(`i18n/${code}/meta.json must be {lang: "${code}", name, dir: "ltr"|"rtl", review?}`);
    }
    // review: who has (not) checked the texts, e.g. "machine translation,
    // awaiting review by a native speaker". For maintainers and the manifest,
    // never for a page: catalogModule leaves it out.
    const extra = Object.keys(meta).filter((k) => !["lang", "name", "dir", "review"].includes(k));
    if (extra.length || (meta.review !== undefined && (typeof meta.review !== "string" || !meta.review.trim()))) {
      throw new Error(`i18n/${code}/meta.json: only lang, name, dir and a non-empty review text are allowed`);
    }
    const unknown = fs.readdirSync(dir).filter((f) => f !== "meta.json" && !SECTIONS.includes(f.replace(/\.json$/, "")));
    if (unknown.length) throw new Error(`i18n/${code}: unknown files ${unknown.join(", ")} (sections are ${SECTIONS.join(", ")})`);
    const data = { meta };
    for (const section of SECTIONS) {
      if (fs.existsSync(path.join(dir, `${section}.json`))) data[section] = read(`${section}.json`);
    }
    if (!data.youth) throw new Error(`i18n/${code}/youth.json is missing`);
    catalogs[code] = data;
  }
  if (!catalogs[DEFAULT_LANG]) throw new Error(`the default catalog i18n/${DEFAULT_LANG}/ is missing`);
  return catalogs;
}

function leafKeys(node, prefix = "") {
  if (node === null || typeof node !== "object" || Array.isArray(node)) return [prefix];
  return Object.keys(node).sort().flatMap((k) => leafKeys(node[k], prefix ? `${prefix}.${k}` : k));
}

/** Warn about keys a catalog lacks (they fall back to Swedish at run time). */
function reportMissing(catalogs) {
  const missing = {};
  for (const section of SECTIONS) {
    const ref = leafKeys(catalogs[DEFAULT_LANG][section]);
    for (const [code, cat] of Object.entries(catalogs)) {
      if (code === DEFAULT_LANG || !cat[section]) continue;
      const have = new Set(leafKeys(cat[section]));
      const lacking = ref.filter((k) => !have.has(k));
      if (lacking.length) missing[`${code}.${section}`] = lacking;
    }
  }
  return missing;
}

/** The module a page imports as "virtual:catalogs": only what its page shows. */
function catalogModule(catalogs, section) {
  const out = {};
  for (const [code, cat] of Object.entries(catalogs)) {
    // Staff, operator and liaison pages list only languages that have their section.
    if (!cat[section]) continue;
    // Staff pages label the youth's profile codes too (queue tags); the
    // operator page shares the staff texts (sign-in, bar) and has its own.
    const codes = (cat.youth && cat.youth.codes) || {};
    let text;
    if (section === "staff") text = { staff: cat.staff, codes };
    else if (section === "operator") text = { staff: cat.staff || {}, operator: cat.operator, codes };
    else text = { [section]: cat[section] };
    out[code] = { meta: { lang: cat.meta.lang, name: cat.meta.name, dir: cat.meta.dir }, text };
  }
  return `export default ${JSON.stringify(out)};`;
}

function catalogPlugin(catalogs, section) {
  return {
    name: "catalogs",
    setup(build) {
      build.onResolve({ filter: /^virtual:catalogs$/ }, () => ({ path: "catalogs", namespace: "catalogs" }));
      build.onLoad({ filter: /.*/, namespace: "catalogs" }, () => ({
        contents: catalogModule(catalogs, section),
        loader: "js",
        resolveDir: I18N,
      }));
    },
  };
}

// --- bundling ------------------------------------------------------------------

async function bundleJs(entry, catalogs, section) {
  const result = await esbuild.build({
    entryPoints: [path.join(SRC, entry)],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: TARGET,
    minify: true,
    charset: "utf8",
    legalComments: "none", // licences are collected into assets/licenses.txt
    sourcemap: false,
    write: false,
    define: { "process.env.NODE_ENV": '"production"' },
    plugins: [catalogPlugin(catalogs, section)],
    logLevel: "warning",
    metafile: true,
  });
  return { bytes: Buffer.from(result.outputFiles[0].contents), metafile: result.metafile };
}

async function bundleCss(entry) {
  const result = await esbuild.build({
    entryPoints: [path.join(SRC, "styles", entry)],
    bundle: true,
    minify: true,
    target: TARGET,
    write: false,
    logLevel: "warning",
  });
  return Buffer.from(result.outputFiles[0].contents);
}

function sha(alg, bytes, enc) {
  return createHash(alg).update(bytes).digest(enc);
}

function assetName(bytes, ext) {
  // Neutral, content-addressed: nothing in a file name says what the page is.
  return `${sha("sha256", bytes, "hex").slice(0, 20)}.${ext}`;
}

function sri(bytes) {
  return `sha384-${sha("sha384", bytes, "base64")}`;
}

/** The CSP source that allows exactly this inline script text. */
function cspHash(text) {
  return `'sha256-${sha("sha256", Buffer.from(text, "utf8"), "base64")}'`;
}

async function inlineScript(file) {
  const source = fs.readFileSync(file, "utf8");
  const result = await esbuild.transform(source, { minify: true, target: TARGET, charset: "utf8", legalComments: "none" });
  const code = result.code.trim();
  if (code.includes("</")) throw new Error(`${path.basename(file)}: '</' would end the inline script`);
  return code;
}

/**
 * The page's inline scripts must be exactly the allowed ones (by their hash);
 * no inline style at all. Returns the CSP hashes the page needs.
 */
function checkInline(name, html, allowed) {
  const hashes = [];
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    if (/\bsrc=/i.test(m[1])) continue;
    const hash = cspHash(m[2]);
    if (m[1].trim() !== "" || !allowed.has(hash)) {
      throw new Error(`${name}: inline script or style (the CSP forbids it)`);
    }
    hashes.push(hash);
  }
  const scripts = (html.match(/<script\b/gi) || []).length;
  const closed = (html.match(/<script\b[^>]*>[\s\S]*?<\/script>/gi) || []).length;
  if (scripts !== closed || /\sstyle=/i.test(html) || /<style/i.test(html) || /\son\w+=/i.test(html)) {
    throw new Error(`${name}: inline script or style (the CSP forbids it)`);
  }
  return hashes;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function lookup(obj, key) {
  return key.split(".").reduce((n, k) => (n && typeof n === "object" ? n[k] : undefined), obj);
}

// --- the HTML template -----------------------------------------------------------
//
// src/pages/template.html knows three forms:
//   {{name}}             a value from `vars`, HTML-escaped (style, script,
//                        early_exit and early_socket are tags built here, inserted as they are)
//   {{#flag}}…{{/flag}}  on one line: kept on pages whose flag is true; a line
//                        that only held it is dropped on the others
// An unknown name or flag stops the build.

function renderPage(template, name, vars, flags) {
  const lines = [];
  for (const line of template.split("\n")) {
    const kept = line.replace(/\{\{#(\w+)\}\}(.*?)\{\{\/\1\}\}/g, (m, flag, body) => {
      if (!(flag in flags)) throw new Error(`${name}: unknown flag {{#${flag}}}`);
      return flags[flag] ? body : "";
    });
    if (kept !== line && kept.trim() === "") continue;
    lines.push(kept);
  }
  const text = lines.join("\n");
  if (/\{\{(?!\w+\}\})/.test(text)) throw new Error(`${name}: a malformed {{…}} in the template`);
  return text.replace(/\{\{(\w+)\}\}/g, (m, k) => {
    if (!(k in vars)) throw new Error(`${name}: unknown placeholder ${m}`);
    return RAW_VARS.has(k) ? vars[k] : escapeHtml(vars[k]);
  });
}

// Values that are markup built here (tags, the pre-rendered first screen), inserted as they are.
const RAW_VARS = new Set(["style", "script", "early_exit", "early_socket", "bar_extra", "main"]);

// --- the inline stylesheet ---------------------------------------------------------
//
// The youth page's stylesheet goes inline in <head>: an external one blocks
// the first paint for a whole round trip (2 s on slow 3G), and nothing is
// cached anyway (Cache-Control: no-store). It is allowed by its exact hash
// ('sha256-…' in style-src, published as csp_style_hashes), like the early
// exit script; style attributes stay forbidden. The same CSS is still
// written to assets/ (and published) for anyone who checks it.

function inlineStyle(name, bytes) {
  const text = bytes.toString("utf8");
  if (/<\/style/i.test(text)) throw new Error(`${name}: '</style' would end the inline stylesheet`);
  return `<style>${text}</style>`;
}

/** The page without its allowed inline stylesheets (their hashes go to `published`), for checkInline. */
function withoutAllowedStyles(name, html, allowed, published) {
  if (!allowed.size) return html;
  const found = [];
  const rest = html.replace(/<style>([\s\S]*?)<\/style>/g, (m, text) => {
    const hash = cspHash(text);
    if (!allowed.has(hash)) return m; // left for checkInline to refuse
    found.push(hash);
    return "";
  });
  if (found.length) published[name] = found;
  return rest;
}

// --- language variants ------------------------------------------------------------
//
// On a slow phone (2 s round trips) the script arrives seconds after the
// HTML, so a page marked perLanguage is written once per language of its
// section, with its first screen already in the HTML: the youth page's
// safety page (src/youth/screens/safety-content.js, the same data the script
// renders), in that language, lang/dir set. index.html is Swedish (the
// default); the others are index.<code>.html. chatserver/transport/http.py
// picks one by Accept-Language (the manifest's page_variants).

function variantName(html, code) {
  return code === DEFAULT_LANG ? html : html.replace(/\.html$/, `.${code}.html`);
}

/** t(key, vars) over one language's catalog, falling back to Swedish (like lib/i18n.js). */
function catalogT(catalogs, code) {
  return (key, vars) => {
    let v = lookup(catalogs[code], key);
    if (typeof v !== "string") v = lookup(catalogs[DEFAULT_LANG], key);
    const text = typeof v === "string" ? v : key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, n) => (n in vars ? String(vars[n]) : m)) : text;
  };
}

/** [tag, attrs, ...children] (safety-content.js) as HTML; `text` is the element's text. */
function nodeHtml(node) {
  if (node === null) return "";
  if (typeof node === "string") return escapeHtml(node);
  const [tag, attrs, ...children] = node;
  if (!/^[a-z][a-z0-9]*$/.test(tag)) throw new Error(`pre-rendered screen: bad tag ${tag}`);
  let open = `<${tag}`;
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text" || v === undefined || v === null || v === false) continue;
    if (!/^[a-z][a-z-]*$/.test(k) || k.startsWith("on") || k === "style") throw new Error(`pre-rendered screen: attribute ${k}`);
    open += v === true ? ` ${k}` : ` ${k}="${escapeHtml(v)}"`;
  }
  const text = attrs.text !== undefined ? escapeHtml(attrs.text) : "";
  return `${open}>${text}${children.map(nodeHtml).join("")}</${tag}>`;
}

async function loadSafetyContent() {
  // A data: URL, because package.json does not make .js files ES modules for node.
  const source = fs.readFileSync(path.join(SRC, "youth", "screens", "safety-content.js"), "utf8");
  const mod = await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
  return mod.safetyContent;
}

/**
 * What differs in the youth page per language: lang/dir, the title, the
 * exit texts, the language list (disabled until the script takes it over:
 * before that, a choice could do nothing) and the safety page.
 */
function youthLanguageVars(catalogs, code, safetyContent) {
  const t = catalogT(catalogs, code);
  const langs = Object.keys(catalogs).filter((c) => catalogs[c].youth);
  const options = langs.map((c) => {
    const meta = catalogs[c].meta;
    return ["option", { value: c, lang: c, dir: meta.dir, selected: c === code, text: meta.name }];
  });
  const select = ["select", {
    id: "lang", class: "lang", "aria-label": `${t("youth.language")} / Language / اللغة`,
    autocomplete: "off", autocorrect: "off", autocapitalize: "off", spellcheck: "false", disabled: true,
  }, ...options];
  // As the script renders it before `status` arrives: 112, no opening hours;
  // "continue" disabled until the script can act on it.
  const telHref = (n) => `tel:${String(n).replace(/[^0-9+]/g, "")}`;
  const content = safetyContent(t, { emergency: "112", telHref, hours: "", retrying: true });
  return {
    lang: code,
    dir: catalogs[code].meta.dir,
    title: t("youth.title"),
    exit: t("youth.exit.button"),
    exit_link: t("youth.exit.link"),
    exit_hint: t("youth.exit.shift_hint"),
    bar_extra: nodeHtml(select),
    main: content.map(nodeHtml).join(""),
  };
}

// --- favicon -------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A 32×32 "sheet of paper with lines" icon: says nothing about the service. */
function favicon() {
  const size = 32;
  const raw = Buffer.alloc((size * 4 + 1) * size);
  const px = (x, y) => {
    const inPage = x >= 6 && x <= 25 && y >= 3 && y <= 28;
    const border = inPage && (x === 6 || x === 25 || y === 3 || y === 28);
    const line = inPage && !border && x >= 9 && x <= 22 && [9, 13, 17, 21].includes(y);
    if (border) return [0x70, 0x75, 0x7d, 0xff];
    if (line) return [0x9a, 0xa0, 0xa6, 0xff];
    if (inPage) return [0xff, 0xff, 0xff, 0xff];
    return [0, 0, 0, 0];
  };
  for (let y = 0; y < size; y++) {
    const row = y * (size * 4 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < size; x++) Buffer.from(px(x, y)).copy(raw, row + 1 + x * 4);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", zlib.deflateSync(raw, { level: 9 })),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
  const header = Buffer.alloc(6 + 16);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // icon
  header.writeUInt16LE(1, 4); // one image
  header[6] = size;
  header[7] = size;
  header.writeUInt16LE(1, 10); // planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(png.length, 14);
  header.writeUInt32LE(22, 18);
  return Buffer.concat([header, png]);
}

// --- licences ------------------------------------------------------------------

function licenses(metafiles) {
  const pkgs = new Set();
  for (const meta of metafiles) {
    for (const input of Object.keys(meta.inputs)) {
      const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
      if (m) pkgs.add(m[1]);
    }
  }
  const parts = [];
  for (const name of [...pkgs].sort()) {
    const dir = path.join(ROOT, "node_modules", name);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    const file = fs.readdirSync(dir).sort().find((f) => /^licen[cs]e/i.test(f));
    const text = file ? fs.readFileSync(path.join(dir, file), "utf8").trim() : `License: ${pkg.license}`;
    parts.push(`${name} ${pkg.version} (${pkg.license})\n\n${text}\n`);
  }
  return Buffer.from(`Third-party software in the browser bundles\n\n${parts.join("\n----\n\n")}`, "utf8");
}

// --- the build -----------------------------------------------------------------

// What gets .gz and .br siblings: text the pages load. Below ~1 KB the
// headers outweigh what compression saves.
const COMPRESSED_EXTENSIONS = new Set([".html", ".js", ".css", ".txt", ".json"]);
const COMPRESS_MIN_BYTES = 1024;

/**
 * Pre-compressed siblings: aiohttp's FileResponse serves name.br or name.gz
 * when the browser accepts it (Content-Encoding, Vary: Accept-Encoding), so
 * a phone on a slow network downloads ~a third of the bytes and the server
 * compresses nothing per request. The manifest publishes the originals.
 */
function addSiblings(files, rels) {
  for (const rel of rels) {
    const bytes = files.get(rel);
    if (!COMPRESSED_EXTENSIONS.has(path.extname(rel)) || bytes.length < COMPRESS_MIN_BYTES) continue;
    files.set(`${rel}.gz`, zlib.gzipSync(bytes, { level: 9 }));
    files.set(`${rel}.br`, zlib.brotliCompressSync(bytes, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }));
  }
}

// --- the size budget -------------------------------------------------------------
//
// The youth page is opened on cheap phones over slow 3G (~50 kB/s, 2 s round
// trips): everything it makes the browser fetch, counted as the bytes the
// server sends to a browser that accepts brotli (each file's .br sibling, or
// the file itself where it has none), must fit its budget, or the build stops
// and writes nothing. 80 000 bytes is ~1.6 s of transfer at 50 kB/s. A page
// written once per language has the budget in every language.
const BUDGETS = { "index.html": 80000 };

/** File -> budget in bytes, for every language variant of a budgeted page. */
function fileBudgets(pageVariants) {
  const out = {};
  for (const [page, limit] of Object.entries(BUDGETS)) {
    for (const name of Object.values(pageVariants[page] || { [DEFAULT_LANG]: page })) out[name] = limit;
  }
  return Object.fromEntries(Object.entries(out).sort());
}

/**
 * What a page makes the browser fetch: the page, every file of dist/ its HTML
 * names (src/href), the favicon (browsers ask for it unasked) and every
 * asset its scripts name (anything loaded on demand), sorted.
 */
function pageFiles(files, page) {
  const found = new Set([page, "favicon.ico"]);
  for (const m of files.get(page).toString("utf8").matchAll(/\b(?:src|href)="\/([^"?#]+)"/g)) {
    if (files.has(m[1])) found.add(m[1]);
  }
  for (const rel of [...found].filter((f) => f.endsWith(".js"))) {
    for (const m of files.get(rel).toString("utf8").matchAll(/\/(assets\/[0-9a-f]{20}\.\w+)/g)) {
      if (files.has(m[1])) found.add(m[1]);
    }
  }
  return [...found].sort();
}

/** The bytes the server sends for a file: its .br/.gz sibling if it has one. */
function sentBytes(files, rel, encoding) {
  return (files.get(`${rel}.${encoding}`) || files.get(rel)).length;
}

async function build(outDir) {
  const catalogs = loadCatalogs();
  const template = fs.readFileSync(TEMPLATE, "utf8");
  const files = new Map(); // relative path -> bytes
  const metafiles = [];
  const cssCache = new Map();
  const pageInfo = [];
  const earlyExit = await inlineScript(EARLY_EXIT);
  const earlySocket = await inlineScript(EARLY_SOCKET);
  const cspScriptHashes = {};
  const pageVariants = {};
  const cspStyleHashes = {};
  const safetyContent = await loadSafetyContent();
  for (const page of PAGES) {
    const js = await bundleJs(page.js, catalogs, page.section);
    metafiles.push(js.metafile);
    const jsName = `assets/${assetName(js.bytes, "js")}`;
    files.set(jsName, js.bytes);
    if (!cssCache.has(page.css)) {
      const css = await bundleCss(page.css);
      const name = `assets/${assetName(css, "css")}`;
      files.set(name, css);
      cssCache.set(page.css, { name, bytes: css });
    }
    const css = cssCache.get(page.css);
    const sv = catalogs[DEFAULT_LANG];
    const vars = {
      lang: DEFAULT_LANG,
      dir: "ltr",
      viewport: "width=device-width, initial-scale=1",
      title: lookup(sv, page.titleKey),
      exit: lookup(sv, "youth.exit.button"),
      exit_link: lookup(sv, "youth.exit.link"),
      exit_hint: lookup(sv, "youth.exit.shift_hint"),
      bar_extra: "",
      main: `<p class="boot">${escapeHtml(lookup(sv, page.loadingKey || "youth.loading"))}</p>`,
      body_class: page.bodyClass,
      bar_class: page.barClass,
      style: `<link rel="stylesheet" href="/${css.name}" integrity="${sri(css.bytes)}">`,
      script: `<script type="module" src="/${jsName}" integrity="${sri(js.bytes)}"></script>`,
      early_exit: `<script>${earlyExit}</script>`,
      early_socket: `<script>${earlySocket}</script>`,
    };
    if (page.inlineStyle) vars.style = inlineStyle(page.html, css.bytes);
    const flags = { noindex: Boolean(page.noindex), quick_exit: Boolean(page.quickExit), early_socket: Boolean(page.earlySocket) };
    const allowed = new Set([...(page.quickExit ? [cspHash(earlyExit)] : []), ...(page.earlySocket ? [cspHash(earlySocket)] : [])]);
    // A perLanguage page: one file per language of its section (see "language variants").
    const codes = page.perLanguage ? Object.keys(catalogs).filter((c) => catalogs[c][page.section]) : [DEFAULT_LANG];
    if (page.perLanguage) {
      pageVariants[page.html] = {};
      // The on-screen keyboard shrinks the layout viewport (and so 100dvh),
      // which keeps the chat's message box in view (youth.css).
      vars.viewport = "width=device-width, initial-scale=1, interactive-widget=resizes-content";
    }
    for (const code of codes) {
      const name = variantName(page.html, code);
      const own = page.perLanguage ? { ...vars, ...youthLanguageVars(catalogs, code, safetyContent) } : vars;
      const html = renderPage(template, name, own, flags);
      const styles = page.inlineStyle ? new Set([cspHash(css.bytes.toString("utf8"))]) : new Set();
      const hashes = checkInline(name, withoutAllowedStyles(name, html, styles, cspStyleHashes), allowed);
      if (hashes.length) cspScriptHashes[name] = hashes;
      files.set(name, Buffer.from(html, "utf8"));
      pageInfo.push({ page: name, js: jsName, css: css.name });
      if (page.perLanguage) pageVariants[page.html][code] = name;
    }
  }
  files.set("favicon.ico", favicon());
  files.set("assets/licenses.txt", licenses(metafiles));

  const manifest = {
    files: Object.fromEntries(
      [...files.keys()].sort().map((k) => [k, { bytes: files.get(k).length, sha256: sha("sha256", files.get(k), "hex"), sri: sri(files.get(k)) }]),
    ),
    pages: pageInfo,
    // What the server adds to a page's CSP script-src (http.py reads this).
    csp_script_hashes: cspScriptHashes,
    // ... and to its style-src: the youth page's inline stylesheet.
    csp_style_hashes: cspStyleHashes,
    // Page -> {language: file}: the files http.py chooses from by Accept-Language.
    page_variants: pageVariants,
    // Per page: the files a browser fetches for it and the bytes the server
    // sends for them with brotli and with gzip (see the budget below).
    transfer: {},
    budgets: fileBudgets(pageVariants),
    // Every language, the sections it has and whether its texts await review:
    // the published record of which translations are machine-made.
    catalogs: Object.fromEntries(Object.entries(catalogs).map(([code, cat]) => [code, {
      sections: SECTIONS.filter((section) => cat[section]),
      ...(cat.meta.review ? { review: cat.meta.review } : {}),
    }])),
  };
  addSiblings(files, [...files.keys()]);
  for (const p of pageInfo) {
    const fetched = pageFiles(files, p.page);
    manifest.transfer[p.page] = {
      files: fetched,
      br: fetched.reduce((sum, f) => sum + sentBytes(files, f, "br"), 0),
      gzip: fetched.reduce((sum, f) => sum + sentBytes(files, f, "gz"), 0),
    };
  }
  for (const [page, limit] of Object.entries(manifest.budgets)) {
    const br = manifest.transfer[page].br;
    if (br > limit) {
      throw new Error(`${page}: ${br} bytes transferred (brotli) is over its budget of ${limit} bytes: ${manifest.transfer[page].files.join(", ")}`);
    }
  }
  files.set("manifest.json", Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8"));
  addSiblings(files, ["manifest.json"]);

  fs.rmSync(outDir, { recursive: true, force: true });
  for (const [rel, bytes] of [...files.entries()].sort()) {
    const target = path.join(outDir, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, bytes);
  }
  return { manifest, missing: reportMissing(catalogs), catalogs };
}

function treeDigest(dir) {
  const out = [];
  const walk = (d) => {
    for (const f of fs.readdirSync(d).sort()) {
      const p = path.join(d, f);
      if (fs.statSync(p).isDirectory()) walk(p);
      else out.push(`${path.relative(dir, p)} ${sha("sha256", fs.readFileSync(p), "hex")}`);
    }
  };
  walk(dir);
  return out.join("\n");
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.check) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wc-build-"));
    try {
      await build(path.join(tmp, "a"));
      await build(path.join(tmp, "b"));
      const a = treeDigest(path.join(tmp, "a"));
      const b = treeDigest(path.join(tmp, "b"));
      if (a !== b) throw new Error("the build is not deterministic");
      console.log("build is deterministic");
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return;
  }
  const { manifest, missing, catalogs } = await build(args.out);
  for (const [code, cat] of Object.entries(catalogs)) {
    if (cat.meta.review) console.log(`catalog ${code}: ${cat.meta.review}`);
  }
  for (const [where, keys] of Object.entries(missing)) {
    console.warn(`catalog ${where}: ${keys.length} key(s) fall back to ${DEFAULT_LANG}: ${keys.slice(0, 5).join(", ")}${keys.length > 5 ? " …" : ""}`);
  }
  for (const [page, t] of Object.entries(manifest.transfer)) {
    const budget = manifest.budgets[page] ? ` (budget ${manifest.budgets[page]})` : "";
    console.log(`${page}: ${t.br} bytes brotli${budget}, ${t.gzip} bytes gzip, transferred (${t.files.length} files)`);
  }
}

main().catch((err) => {
  console.error(err.message || err);
  process.exit(1);
});
