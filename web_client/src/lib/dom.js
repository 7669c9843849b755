// A tiny element builder. Text always goes in through textContent / text
// nodes: no page in this project ever assigns innerHTML.

/**
 * h("p", {class: "x", text: "hi", onclick: fn, "aria-live": "polite"}, child, ...)
 * Children may be nodes, strings (become text nodes), arrays, null/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value") el.value = v;
      else if (k === "checked") el.checked = Boolean(v);
      else if (k === "style") throw new Error("inline styles are blocked by the CSP; use a class");
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (typeof c === "string" || typeof c === "number") el.appendChild(document.createTextNode(String(c)));
    else el.appendChild(c);
  }
}

/** Replace all children of el. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Run fn (a re-render that replaces nodes) and give focus back, by id, to the
 * element that had it. A removed node takes the focus with it: without this a
 * keyboard or screen-reader user is thrown back to the top of the page, and a
 * phone's on-screen keyboard closes mid-word, whenever a message, a roster
 * change or a reconnect re-renders the screen. The caret of a text field comes
 * back too. If fn moved the focus on purpose, it stays where fn put it.
 */
export function keepFocus(fn) {
  const active = document.activeElement;
  const id = active && active !== document.body ? active.id : "";
  const caret = id && typeof active.selectionStart === "number"
    ? [active.selectionStart, active.selectionEnd, active.selectionDirection || "none"]
    : null;
  const result = fn();
  const now = document.activeElement;
  if (!id || (now && now !== document.body)) return result;
  const again = document.getElementById(id);
  // Same id, same kind of control: an id reused for something else is not "it".
  if (!again || again.tagName !== active.tagName) return result;
  again.focus({ preventScroll: true });
  if (caret) {
    try {
      again.setSelectionRange(...caret);
    } catch {
      // an input type without a caret (a changed type): the focus is enough
    }
  }
  return result;
}

/** Inputs that leave nothing in the browser's autofill, dictionary or spell-check. */
export const NO_TRACE_INPUT = Object.freeze({
  autocomplete: "off",
  autocorrect: "off",
  autocapitalize: "off",
  spellcheck: "false",
});

let idCounter = 0;
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

export function formatClock(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "4 min" / "1 h 05 min" / "35 s": short, language-neutral wait times. */
export function formatDuration(secs) {
  const s = Math.max(0, Math.floor(secs));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}
