// Liaison invites, on the counsellor's side (docs/design/invites.md): make
// the secret here and send only its hash; show the address and the code
// apart; check each join request's MAC against the outstanding invites and
// show the comparison code; admit (first the E2E intro, then `admit`) or
// refuse. The secret and MAC keys live only in this page's memory.
import * as e2e from "../lib/e2e.js";
import * as invite from "../lib/invite.js";
import { call } from "../lib/calls.js";
import { h, NO_TRACE_INPUT } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { appendItem } from "./log.js";
import { app, INVITE_ROLES } from "./state.js";
import { errorText, formatDateTime, refreshPane, roleLabel } from "./view.js";

/** The "Invite a liaison" tool's fields: role, create, and the address and code to copy. */
export function inviteFields(entry, roleId, linkId, codeId) {
  return [
    h(
      "div",
      { class: "field" },
      h("label", { for: roleId, text: t("staff.tools.invite_role") }),
      h(
        "select",
        { id: roleId, name: "invite-role", ...NO_TRACE_INPUT, onchange: (e) => (entry.inviteRole = e.target.value) },
        INVITE_ROLES.map((r) => h("option", { value: r, selected: r === entry.inviteRole, text: roleLabel(r) })),
      ),
    ),
    h("button", { type: "button", class: "secondary", id: "invite-create", onclick: () => onInviteCreate(entry), text: t("staff.tools.invite_create") }),
    entry.lastInvite
      ? h(
          "div",
          { class: "invite-link field" },
          h("label", { for: linkId, text: t("staff.tools.invite_link") }),
          h("input", { id: linkId, name: "invite-link", class: "link-text", type: "text", readonly: true, dir: "ltr", value: entry.lastInvite.link, ...NO_TRACE_INPUT }),
          h("label", { for: codeId, text: t("staff.tools.invite_code") }),
          h("input", { id: codeId, name: "invite-code", class: "link-text", type: "text", readonly: true, dir: "ltr", value: entry.lastInvite.code, ...NO_TRACE_INPUT }),
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", class: "secondary", id: "invite-copy", onclick: (e) => copyInvite(e.currentTarget, entry.lastInvite, codeId), text: t("staff.tools.invite_copy") }),
            h("span", { id: "invite-expires", text: `${roleLabel(entry.lastInvite.role)} · ${t("staff.tools.invite_expires", { time: formatDateTime(entry.lastInvite.expiresAt) })}` }),
          ),
          h("p", { class: "hint", text: t("staff.tools.invite_hint") }),
        )
      : null,
  ];
}

/** Copy the message for the liaison: the address and, apart from it, the code. */
async function copyInvite(button, inv, codeInputId) {
  const input = document.getElementById(codeInputId);
  if (!inv || !input) return;
  let ok = false;
  try {
    await navigator.clipboard.writeText(t("staff.tools.invite_message", { url: inv.link, code: inv.code, time: formatDateTime(inv.expiresAt) }));
    ok = true;
  } catch {
    input.select(); // without the Clipboard API: at least the code
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
  }
  if (ok) button.textContent = t("staff.tools.invite_copied");
}

async function onInviteCreate(entry) {
  const role = entry.inviteRole;
  // The secret is made here and never sent: the server gets only its hash.
  const secret = invite.newSecret();
  const id = invite.inviteId(secret);
  const idB64 = e2e.b64(id);
  const reply = await call(app.socket, "invite_create", { conversation: entry.conv.id, invite: idB64, role });
  if (!reply.ok || entry.state === "ended") {
    e2e.wipe(secret);
    e2e.wipe(id);
    if (!reply.ok) setNotice(app, errorText(reply.error));
    return;
  }
  const expiresAt = Number(reply.expires_at) || Date.now() + 15 * 60 * 1000;
  entry.invites.set(idB64, { id, macKey: invite.macKey(secret), role, expiresAt });
  // The code is never part of a URL: a browser records every URL it opens in
  // its history before any script can remove it (docs/design/invites.md).
  entry.lastInvite = { link: `${location.origin}/join`, code: invite.fragment(secret, entry.conv.id), role, expiresAt, idB64 };
  e2e.wipe(secret); // the MAC key and id are all this page needs from now on
  setNotice(app, "");
  refreshPane(entry);
}

/** Invites past their expiry are forgotten (the server drops them too). */
export function expireInvites() {
  const now = Date.now();
  for (const entry of app.convs.values()) {
    let changed = false;
    for (const [idB64, inv] of entry.invites) {
      if (inv.expiresAt <= now) {
        e2e.wipe(inv.id);
        e2e.wipe(inv.macKey);
        entry.invites.delete(idB64);
        changed = true;
      }
    }
    if (entry.lastInvite && !entry.invites.has(entry.lastInvite.idB64)) {
      entry.lastInvite = null;
      changed = true;
    }
    if (changed) refreshPane(entry);
  }
}

/**
 * A `join_request`: check its MAC against every outstanding invite of this
 * conversation and role; a match is used up here too (single use) and gives
 * the comparison code. Adds the request to entry.requests.
 */
export function takeJoinRequest(entry, data) {
  let matched = null;
  for (const [idB64, inv] of entry.invites) {
    if (inv.role === data.role && invite.verifyMac(inv.macKey, entry.conv.id, data.kx_pk, data.mac)) {
      matched = { idB64, inv };
      break;
    }
  }
  let code = null;
  if (matched) {
    try {
      code = invite.comparisonCode(matched.inv.macKey, matched.inv.id, entry.conv.id, e2e.unb64(data.kx_pk, 32), entry.conv.keys.pk);
    } catch {
      code = null;
    }
    // Single use on this side too: the link is done, its secret goes.
    e2e.wipe(matched.inv.id);
    e2e.wipe(matched.inv.macKey);
    entry.invites.delete(matched.idB64);
    if (entry.lastInvite && entry.lastInvite.idB64 === matched.idB64) entry.lastInvite = null;
  }
  entry.requests.set(data.request, {
    request: data.request,
    role: String(data.role || ""),
    kxPk: String(data.kx_pk || ""),
    verified: Boolean(matched && code),
    code,
    state: "pending",
    error: "",
  });
}

/** One card per join request: verified (with the code, Admit / Refuse) or red (Refuse only). */
export function requestCards(entry) {
  return [...entry.requests.values()].map((r) => {
    const hid = `rq-${r.request}`;
    let status = "";
    if (r.state === "introducing") status = t("staff.tools.request_introducing");
    else if (r.state === "consent") status = t("staff.tools.request_consent");
    else if (r.state === "declined") status = t("staff.tools.request_declined");
    else if (r.state === "failed") status = t("staff.tools.request_failed", { code: r.error || "?" });
    return h(
      "section",
      { class: ["card", "join-request", r.verified ? "" : "danger"], id: `request-${r.request}`, "data-verified": String(r.verified), "data-state": r.state, "aria-labelledby": hid },
      h("h3", { id: hid, tabindex: "-1", text: t("staff.tools.request_heading", { role: roleLabel(r.role) }) }),
      h("p", { role: r.verified ? null : "alert", text: t(r.verified ? "staff.tools.request_verified" : "staff.tools.request_unverified") }),
      r.verified && r.code ? h("p", { class: "compare", "data-code": r.code, text: t("staff.tools.request_code", { code: r.code }) }) : null,
      r.state === "pending"
        ? h(
            "div",
            { class: "actions" },
            r.verified ? h("button", { type: "button", class: "primary admit", onclick: () => onAdmit(entry, r), text: t("staff.tools.admit") }) : null,
            h("button", { type: "button", class: "secondary refuse", onclick: () => onRefuse(entry, r), text: t("staff.tools.refuse") }),
          )
        : h("p", { class: "req-state", role: "status", text: status }),
    );
  });
}

async function onAdmit(entry, r) {
  if (!r.verified || r.state !== "pending") return;
  r.state = "introducing";
  refreshPane(entry);
  // First the introduction, end to end, so the youth's page can check the
  // consent_request the server will send; only then the admission.
  const now = Date.now();
  const item = { kind: "intro", payload: { type: "intro", request: r.request, role: r.role, kx_pk: r.kxPk, sent_at: now }, sentAt: now };
  const sent = await entry.outbox.pushAndWait(item);
  if (entry.state === "ended") return;
  if (sent !== "sent") {
    r.state = "failed";
    r.error = "send";
    refreshPane(entry);
    return;
  }
  appendItem(entry, { kind: "system", key: "staff.tools.intro_sent", vars: { role: roleLabel(r.role) } });
  const reply = await call(app.socket, "admit", { conversation: entry.conv.id, request: r.request, accept: true });
  if (reply.ok) r.state = r.state === "introducing" ? "consent" : r.state;
  else {
    r.state = "failed";
    r.error = reply.error;
  }
  refreshPane(entry);
}

async function onRefuse(entry, r) {
  entry.requests.delete(r.request);
  refreshPane(entry);
  await call(app.socket, "admit", { conversation: entry.conv.id, request: r.request, accept: false });
}
