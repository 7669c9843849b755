// Text catalogs. Every language is one JSON file in src/i18n/; the build
// injects the section a page needs (youth or staff) through the virtual module
// below. Swedish is the default and the reference: a key missing from another
// catalog falls back to Swedish, never to a blank.
import catalogs from "virtual:catalogs";

export const DEFAULT_LANG = "sv";
let current = DEFAULT_LANG;
const listeners = new Set();

export function languages() {
  return Object.keys(catalogs).map((code) => ({
    code,
    name: catalogs[code].meta.name,
    dir: catalogs[code].meta.dir === "rtl" ? "rtl" : "ltr",
  }));
}

export function lang() {
  return current;
}

export function dir() {
  return catalogs[current].meta.dir === "rtl" ? "rtl" : "ltr";
}

function lookup(cat, key) {
  let node = cat.text;
  for (const part of key.split(".")) {
    if (node === null || typeof node !== "object" || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

/** The raw catalog value (string, list or object) for key. */
export function raw(key) {
  const v = lookup(catalogs[current], key);
  return v !== undefined ? v : lookup(catalogs[DEFAULT_LANG], key);
}

/** The text for key with {name} placeholders filled in (plain text, never HTML). */
export function t(key, vars) {
  const v = raw(key);
  const text = typeof v === "string" ? v : key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** A config value that is either a string or {sv, en, ...}: pick ours. */
export function localized(value) {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    for (const code of [current, DEFAULT_LANG, "en"]) {
      if (typeof value[code] === "string") return value[code];
    }
    const first = Object.values(value).find((v) => typeof v === "string");
    if (first) return first;
  }
  return "";
}

export function setLang(code) {
  if (!(code in catalogs)) return;
  current = code;
  document.documentElement.lang = code;
  document.documentElement.dir = dir();
  for (const fn of listeners) fn(code);
}

export function onLangChange(fn) {
  listeners.add(fn);
}
