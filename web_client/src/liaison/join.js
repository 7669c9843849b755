// Joining with an invite code: find the code in what was pasted, derive the
// invite id and MAC key (the secret is wiped at once), connect, `join`, wait
// for the youth's consent; the comparison codes; reconnecting.
import * as e2e from "../lib/e2e.js";
import * as invite from "../lib/invite.js";
import { call, connect } from "../lib/calls.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { app, handlers, wipeSecrets } from "./state.js";
import { endWith, go, render } from "./view.js";

// The code as the counsellor sends it: base64url(secret) "." conversation-hex.
const CODE_IN_TEXT = /(?:^|[^A-Za-z0-9_-])([A-Za-z0-9_-]{43}\.[0-9a-f]{32})(?![0-9a-f])/;

/** The code from what was pasted: the code, "#code", the whole link or message. */
function codeFrom(text) {
  const m = CODE_IN_TEXT.exec(String(text || ""));
  return m ? m[1] : String(text || "").trim();
}

/** Join with what was pasted (or a hand-made link's fragment); a malformed code keeps the enter screen. */
export function start(text) {
  let parsed;
  try {
    parsed = invite.parseFragment(codeFrom(text));
  } catch {
    go("enter");
    setNotice(app, text ? t("liaison.invalid") : "");
    return;
  }
  app.link = { macKey: invite.macKey(parsed.secret), inviteId: invite.inviteId(parsed.secret), conversation: parsed.conversation };
  e2e.wipe(parsed.secret);
  app.keys = e2e.keypair();
  go("joining");
  const socket = connect("/liaison");
  app.socket = socket;
  socket.on("connect", onConnect);
  socket.on("disconnect", onDisconnect);
  for (const event of Object.keys(handlers)) {
    socket.on(event, (data) => {
      if (data && typeof data === "object") handlers[event](data);
    });
  }
}

function joinError(code) {
  if (code === "bad_invite") return t("liaison.bad_invite");
  if (code === "wrong_state") return t("liaison.full");
  if (code === "rate_limited") return t("liaison.rate_limited");
  return t("liaison.failed", { code });
}

export function fail(text) {
  app.failText = text;
  wipeSecrets();
  if (app.socket) app.socket.disconnect();
  go("failed");
}

async function doJoin() {
  const link = app.link;
  const keys = app.keys;
  const mac = invite.mac(link.macKey, link.conversation, keys.pk);
  const reply = await call(app.socket, "join", { invite: e2e.b64(link.inviteId), kx_pk: e2e.b64(keys.pk), mac: e2e.b64(mac) });
  e2e.wipe(mac);
  if (!reply.ok) return fail(joinError(reply.error));
  if (reply.conversation !== link.conversation) return fail(t("liaison.bad_invite"));
  app.request = String(reply.request || "");
  app.role = String(reply.role || "");
  go("waiting");
  if (app.pendingJoined) {
    const data = app.pendingJoined;
    app.pendingJoined = null;
    handlers.joined(data);
  }
}

/** The comparison code with each counsellor in the roster (docs/design/invites.md). */
export function computeCodes() {
  const conv = app.conv;
  if (!conv || !app.link) return;
  for (const m of conv.others()) {
    if (m.role !== "counsellor" || app.codes.has(m.kx_pk)) continue;
    try {
      app.codes.set(m.kx_pk, invite.comparisonCode(app.link.macKey, app.link.inviteId, conv.id, conv.keys.pk, e2e.unb64(m.kx_pk, 32)));
    } catch {
      // a malformed key: no code, and the box paths refuse it anyway
    }
  }
}

async function onConnect() {
  app.online = true;
  const conv = app.conv;
  if (conv) {
    const reply = await call(app.socket, "resume", { conversation: conv.id, member: conv.member, resume: conv.resume });
    if (app.conv !== conv) return;
    if (!reply.ok) return endWith("lost");
    try {
      conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
    } catch {
      return endWith("lost");
    }
    for (const box of conv.releaseHeld()) handlers.box(box);
    computeCodes();
    app.outbox.kick();
    render();
  } else if (app.screen === "joining") {
    await doJoin();
  } else if (app.screen === "waiting") {
    // The server drops a waiting request with its connection: the link is used up.
    fail(t("liaison.lost_waiting"));
  }
}

function onDisconnect() {
  if (app.screen !== "chat" && app.screen !== "waiting") return;
  app.online = false;
  render();
}
