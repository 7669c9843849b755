// The youth page: safety page → optional profile → queue → end-to-end
// encrypted chat → end. Nothing is written to any browser storage; every
// secret lives in this page's memory (state.js) and is wiped on exit or
// pagehide. This module wires the parts together and starts the page:
//   state.js            the one state object; wiping a conversation
//   view.js             render / go, the top bar, pieces several screens share
//   log.js              the chat log's items and how people are named
//   screens/*.js        one file per screen (closed.js holds closed and full;
//                       help.js whom to call, also while the chat has trouble)
//   events.js           what the server pushes
//   socket.js           connect, resume, the "full" refusal, continue / try again
//   socket-takeover.js  the socket the page's inline script opened, taken over
// Imports point one way, from main down to state (tests/unit/test_web_client_layout.py
// refuses a cycle): screens and handlers reach each other through the
// `screens` and `handlers` tables this module fills, not through imports.
// Design notes: docs/design/web-client.md.
import * as e2e from "../lib/e2e.js";
// Not used here: imported early so that esbuild puts the libraries (this one
// pulls in socket.io-client) before the page's own modules, which then sit
// together in the bundle and compress better (about 0.6 KiB less gzipped).
import "../lib/calls.js";
import { conversationTestSurface } from "../lib/conversation.js";
import { h } from "../lib/dom.js";
import { onLangChange, setLang, t } from "../lib/i18n.js";
import { HANDLERS } from "./events.js";
import { installQuickExit, isWiped } from "./exit.js";
import { chat } from "./screens/chat.js";
import { closed, full } from "./screens/closed.js";
import { decoy } from "./screens/decoy.js";
import { ended } from "./screens/ended.js";
import { profile } from "./screens/profile.js";
import { returncode } from "./screens/returncode.js";
import { safety } from "./screens/safety.js";
import { waiting } from "./screens/waiting.js";
import { dropEarlySocket } from "./socket-takeover.js";
import { openSocket } from "./socket.js";
import { app, handlers, wipeConversation } from "./state.js";
import { heading, notice, render, renderBar, screens } from "./view.js";

// --- quick exit: first, before anything can fail -----------------------------

installQuickExit((why) => {
  const { socket, conv } = app;
  if (socket) {
    if (conv && !conv.wiped && app.screen !== "ended") {
      // Best effort, never awaited. Only the quick exit is a panic; a reload or
      // a closed tab (pagehide) is "closed", so the counsellor does not escalate
      // a panic that did not happen.
      const reason = why === "panic" ? "panic" : "closed";
      try {
        socket.emit("leave", { conversation: conv.id, reason });
      } catch {
        // ignore
      }
    }
    try {
      socket.disconnect();
    } catch {
      // ignore
    }
  }
  // Gone before the bundle connected: the inline script's socket goes too.
  dropEarlySocket();
  wipeConversation();
  app.items = [];
  app.draft = "";
  app.status = null;
  app.closedInfo = null;
  app.full = null;
  clearTimeout(app.fullTimer);
  // The return code (shown or typed) goes with everything else.
  app.returnCode = null;
  app.returnInput = "";
  app.profileValues = {};
});

// The crypto known-answer tests drive the exact bundle through these pure
// functions; they hold no key and no state.
Object.defineProperty(globalThis, "cv1", { value: Object.freeze({ ...e2e.testSurface, conversation: conversationTestSurface }) });

Object.assign(screens, {
  loading: () => [heading(t("youth.loading")), notice()],
  error: () => [heading(t("youth.error.generic")), h("p", { role: "alert", text: app.notice || t("youth.error.generic") })],
  safety,
  profile,
  closed,
  full,
  waiting,
  chat,
  returncode,
  decoy,
  ended,
});
Object.assign(handlers, HANDLERS);

// The server chose the page's language from Accept-Language and wrote the
// safety page into the HTML in it (docs/design/web-client.md, "The first
// screen in the HTML"): go on in that language, set before any listener, so
// nothing re-renders for it.
setLang(document.documentElement.lang);

onLangChange(() => {
  document.title = t("youth.title");
  render();
});

// --- start-up --------------------------------------------------------------------

async function boot() {
  document.title = t("youth.title");
  // The safety page is already on screen (written into the HTML): render the
  // same screen over it at once, never "loading" in between, so it does not
  // flash; the bar's language list and "continue" come alive. Status (hours,
  // open) fills in when it arrives.
  app.screen = "safety";
  renderBar();
  render();
  try {
    await e2e.ready();
  } catch {
    app.notice = t("youth.error.crypto");
    app.screen = "error";
    render(true);
    return;
  }
  if (isWiped()) return;
  openSocket();
}

boot();
