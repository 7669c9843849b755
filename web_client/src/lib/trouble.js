// The shared live state out of reach. On a deployment of several nodes every
// state-changing call answers `unavailable` while the nodes cannot reach
// Redis (docs/protocol.md, error codes): nothing was done, and the error's
// info says whom to call. The pages learn it from the replies themselves —
// there is no other signal — so every reply passes through noteReply (from
// lib/calls.js and staff/session.js): `unavailable` starts the trouble, the
// next successful state-changing call ends it. Each page shows it its own
// way: the youth page whom to call (youth/screens/help.js), the staff pages
// a banner (troubleBanner below). Memory only, like everything else.
import { onLangChange, t } from "./i18n.js";

// Calls a node answers from its own copy of the state, without the shared
// log (chatserver/transport: status, partners, colleagues, ops_watch; a GET
// over HTTP): their success says nothing about the shared state.
const READS = new Set(["status", "partners", "colleagues", "ops_watch"]);

/** on: a call answered `unavailable` and none has succeeded since; info: its whom-to-call data. */
export const trouble = { on: false, info: null };
const listeners = new Set();

/** fn() after the trouble starts or ends. */
export function onTroubleChange(fn) {
  listeners.add(fn);
}

/** A call's reply (event: its name, or "GET" for an HTTP read). */
export function noteReply(event, reply) {
  if (!reply || typeof reply !== "object") return;
  if (reply.error === "unavailable") {
    const info = reply.info && typeof reply.info === "object" ? reply.info : null;
    trouble.info = info || trouble.info;
    if (!trouble.on) {
      trouble.on = true;
      for (const fn of listeners) fn();
    }
  } else if (reply.ok === true && trouble.on && !READS.has(event) && event !== "GET") {
    trouble.on = false;
    for (const fn of listeners) fn();
  }
}

/**
 * A staff page's banner while the trouble lasts: one element between the bar
 * and <main>, outside everything the page redraws (a sign-in form, the
 * console's parts), so it stays put and is read out once (role=alert).
 * textKey: the catalog key of its text.
 */
export function troubleBanner(textKey) {
  let el = null;
  const show = () => {
    if (!trouble.on) {
      if (el) el.remove();
      el = null;
      return;
    }
    if (!el) {
      el = document.createElement("p");
      el.id = "trouble-banner";
      el.className = "trouble-banner";
      el.setAttribute("role", "alert");
      const main = document.getElementById("main");
      main.parentNode.insertBefore(el, main);
    }
    el.textContent = t(textKey);
  };
  onTroubleChange(show);
  onLangChange(show);
}
