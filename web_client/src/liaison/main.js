// The liaison page (/join): an on-call police, health-care or social-services
// liaison joins one conversation with the invite code a counsellor sent
// (docs/design/invites.md). The code is pasted into the page, never opened as
// a link: Chromium records every URL it commits in History and Sessions
// before any script runs. No account, no cookie, nothing stored: keys live in
// memory and are wiped when the page goes. A hand-made link with the code in
// its fragment still works (fragment.js strips it), but the browser has
// already recorded it; using it up at once at least makes that copy useless.
//
// This module starts the page and wires the parts: state.js (the state,
// wiping), view.js (render, the log, names), screens.js (the screens and
// their buttons), join.js (the code, joining, reconnecting), events.js (what
// the server pushes). Imports point one way, from main down to state.
import { takeFragment } from "./fragment.js"; // first: strips the secret from the address bar
import * as e2e from "../lib/e2e.js";
import * as invite from "../lib/invite.js";
import "../lib/calls.js"; // early, for the bundle's order: see youth/main.js
import { onLangChange, t } from "../lib/i18n.js";
import { HANDLERS } from "./events.js";
import { start } from "./join.js";
import { SCREENS } from "./screens.js";
import { app, handlers, wipeSecrets } from "./state.js";
import { go, main, render, screens } from "./view.js";

// The invite derivations, for the known-answer tests (pure, no state).
Object.defineProperty(globalThis, "cv1", { value: Object.freeze({ ready: () => e2e.ready().then(() => true), invite: invite.inviteTestSurface }) });

Object.assign(screens, SCREENS);
Object.assign(handlers, HANDLERS);

window.addEventListener("pagehide", () => {
  // Best effort: the others see "left" at once instead of after the grace period.
  const conversation = app.conv ? app.conv.id : app.request && app.link ? app.link.conversation : "";
  if (app.socket && conversation && (app.screen === "chat" || app.screen === "waiting")) {
    try {
      app.socket.emit("leave", { conversation });
    } catch {
      // ignore
    }
  }
  if (app.socket) app.socket.disconnect();
  wipeSecrets();
  app.items = [];
  main.replaceChildren();
});

window.addEventListener("beforeunload", (e) => {
  // A reload cannot take the seat back (the invite is used up): ask first.
  if (app.screen === "chat" || app.screen === "waiting") {
    e.preventDefault();
    e.returnValue = "";
  }
});

async function boot() {
  const fragment = takeFragment();
  document.title = t("liaison.title");
  render();
  try {
    await e2e.ready();
  } catch {
    app.failText = t("liaison.crypto");
    go("failed");
    return;
  }
  start(fragment);
}

onLangChange(() => {
  document.title = t("liaison.title");
  render();
});

boot();
