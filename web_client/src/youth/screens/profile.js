// The start screen: an optional, skippable profile (codes from `status`,
// labels from the catalogs), a return code field, "I contact you at work";
// then `start` with a fresh key pair, and into the queue.
import * as e2e from "../../lib/e2e.js";
import { call } from "../../lib/calls.js";
import { Conversation, Outbox } from "../../lib/conversation.js";
import { h, mount, NO_TRACE_INPUT } from "../../lib/dom.js";
import { lang, raw, t } from "../../lib/i18n.js";
import { setNotice } from "../../lib/notice.js";
import { isWiped } from "../exit.js";
import { onOutboxChange } from "../log.js";
import { helpCards } from "./help.js";
import { app, handlers } from "../state.js";
import { errorText, go, heading, notice, render } from "../view.js";

export function profile() {
  const lists = (app.status && app.status.profile) || {};
  const field = (name, listKey, codesKey, labelKey = `youth.profile.${name}`, list = lists[listKey]) => {
    // Fixed ids (not uid()): a re-render gives the focus back by id.
    const id = `f-${name}`;
    const codes = Array.isArray(list) ? list : [];
    if (!codes.length) return null;
    return h(
      "div",
      { class: "field" },
      h("label", { for: id, text: t(labelKey) }),
      h(
        "select",
        {
          id,
          name,
          ...NO_TRACE_INPUT,
          onchange: (e) => {
            app.profileValues[name] = e.target.value;
            if (name === "municipality") fillDistricts();
          },
        },
        h("option", { value: "", text: t("youth.profile.unset") }),
        codes.map((code) => h("option", { value: code, selected: app.profileValues[name] === code, text: codeLabel(codesKey, code) })),
      ),
    );
  };
  const urgentId = "f-urgent";
  const proId = "f-pro";
  const codeId = "f-code";
  const codeHint = "f-code-hint";
  // Type text, never password: a password field would make the browser offer
  // to save the code. Nothing about it is stored; it goes out with `start`.
  const codeInput = h("input", {
    id: codeId,
    name: "passphrase",
    type: "text",
    maxlength: "200",
    dir: "ltr",
    "aria-describedby": codeHint,
    ...NO_TRACE_INPUT,
    oninput: (e) => {
      app.returnInput = e.target.value;
    },
  });
  codeInput.value = app.returnInput;
  // Districts only for a municipality that has them (Stockholm's stadsdelar),
  // asked right after the municipality, for statistics.
  const districtWrap = h("div", { id: "f-district-wrap" });
  function fillDistricts() {
    const all = lists.districts && typeof lists.districts === "object" ? lists.districts : {};
    const list = all[app.profileValues.municipality];
    if (!Array.isArray(list) || !list.includes(app.profileValues.district)) delete app.profileValues.district;
    mount(districtWrap, Array.isArray(list) ? field("district", null, "districts", "youth.profile.district", list) : null);
  }
  fillDistricts();
  const youthOnly = h("div", { class: "youth-only", hidden: app.professional }, field("age_band", "age_bands", "age_bands"), field("gender", "genders", "genders"), field("municipality", "municipalities", "municipalities"), districtWrap);
  const proOnly = h("div", { class: "pro-only", hidden: !app.professional }, field("workplace_municipality", "municipalities", "municipalities", "youth.profile.workplace"), field("profession", "professions", "professions"));
  const form = h(
    "form",
    { class: "profile", novalidate: true, onsubmit: (e) => e.preventDefault() },
    h(
      "section",
      { class: "card return-code", "aria-labelledby": "rc-h" },
      h("h2", { id: "rc-h", text: t("youth.return.heading") }),
      h("div", { class: "field" }, h("label", { for: codeId, text: t("youth.return.label") }), codeInput, h("p", { id: codeHint, class: "hint", text: t("youth.return.hint") })),
      startErrorCard(getForm),
    ),
    h(
      "div",
      { class: "field check" },
      h("input", {
        type: "checkbox",
        id: proId,
        name: "professional",
        checked: app.professional,
        ...NO_TRACE_INPUT,
        onchange: (e) => {
          app.professional = e.target.checked;
          youthOnly.hidden = app.professional;
          proOnly.hidden = !app.professional;
        },
      }),
      h("label", { for: proId, text: t("youth.profile.professional") }),
    ),
    proOnly,
    field("language", "languages", "languages"),
    youthOnly,
    field("topic", "topics", "topics"),
    h(
      "div",
      { class: "field check" },
      h("input", { type: "checkbox", id: urgentId, name: "urgent", checked: app.profileValues.urgent === true, ...NO_TRACE_INPUT, onchange: (e) => (app.profileValues.urgent = e.target.checked) }),
      h("label", { for: urgentId, text: t("youth.profile.urgent") }),
    ),
    notice(),
    // A refused start never leaves the youth empty-handed: 112 and the alternatives.
    app.startRefused ? helpCards(app.status && app.status.alternatives) : null,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "primary", id: "start", onclick: () => onStart(readProfile(form)), disabled: app.starting, text: t("youth.profile.submit") }),
      h("button", { type: "button", class: "secondary", id: "skip", onclick: () => onStart(app.professional ? { professional: true } : null), disabled: app.starting, text: t("youth.profile.skip") }),
    ),
  );
  function getForm() {
    return form;
  }
  return [heading(t("youth.profile.heading")), h("p", { text: t("youth.profile.intro") }), form];
}

/** After a refused return code: say plainly what may have happened; offer a new chat. */
function startErrorCard(getForm) {
  if (!app.startError) return null;
  const bad = app.startError === "bad_passphrase";
  return h(
    "div",
    { class: "card danger start-error", id: "code-error", role: "alert" },
    h("p", { class: "lead", text: t(bad ? "youth.return.bad" : "youth.return.rate_limited") }),
    bad ? h("p", { text: t("youth.return.bad_advice") }) : null,
    h(
      "div",
      { class: "actions" },
      h("button", {
        type: "button",
        class: "primary",
        id: "start-without-code",
        onclick: () => {
          app.returnInput = "";
          app.startError = "";
          onStart(readProfile(getForm()));
        },
        text: t("youth.return.new_chat"),
      }),
    ),
  );
}

function codeLabel(listKey, code) {
  const label = raw(`youth.codes.${listKey}.${code}`);
  return typeof label === "string" ? label : code; // municipality names are proper names
}

function readProfile(form) {
  const profile = {};
  // A professional's consultation: workplace municipality instead of the
  // youth's own age, gender and home municipality.
  const names = app.professional ? ["language", "workplace_municipality", "profession", "topic"] : ["language", "age_band", "gender", "municipality", "district", "topic"];
  if (app.professional) profile.professional = true;
  for (const name of names) {
    const el = form.elements.namedItem(name);
    if (el && el.value) profile[name] = el.value;
  }
  const urgent = form.elements.namedItem("urgent");
  if (urgent && urgent.checked) profile.urgent = true;
  return Object.keys(profile).length ? profile : null;
}

async function onStart(profile) {
  if (app.starting) return;
  app.starting = true;
  setNotice(app, "");
  const keys = e2e.keypair();
  const payload = { kx_pk: e2e.b64(keys.pk) };
  if (profile) payload.profile = profile;
  // The counsellor sees which language this page was read in. Only a language
  // the server lists: a server configured apart from this build still lets
  // the youth in.
  const shipped = (app.status && app.status.profile && app.status.profile.page_languages) || [];
  if (shipped.includes(lang())) payload.page_language = lang();
  const code = app.returnInput.trim();
  if (code) payload.passphrase = code;
  app.startError = "";
  app.startRefused = false;
  app.pending = [];
  render(); // the start buttons show as busy while the server checks
  // A return code takes the server a moment (a memory-hard hash): allow for it.
  const reply = await call(app.socket, "start", payload, code ? 30000 : undefined);
  payload.passphrase = "";
  app.starting = false;
  if (isWiped()) return;
  if (!reply.ok) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    if (reply.error === "nobody_on_duty") {
      // The code was not spent: it stays in the field for later.
      app.closedInfo = reply.info || null;
      go("closed");
    } else if (code && (reply.error === "bad_passphrase" || reply.error === "rate_limited")) {
      app.startError = reply.error === "bad_passphrase" ? "bad_passphrase" : "rate_limited_code";
      app.startRefused = reply.error === "rate_limited";
      render();
      const card = document.getElementById("code-error");
      if (card) card.scrollIntoView({ block: "nearest" });
      const next = document.getElementById("start-without-code");
      if (next) next.focus({ preventScroll: true });
    } else {
      // Rate limit, a full queue, server trouble or no answer.
      app.startRefused = true;
      render();
      setNotice(app, errorText(reply.error));
    }
    return;
  }
  app.returnInput = "";
  app.profileValues = {};
  app.choosing = reply.returning === "choose";
  const conv = new Conversation({ id: reply.conversation, member: reply.member, resume: reply.resume, keys });
  conv.applyRoster({
    state: "waiting",
    epoch: 0,
    members: [{ member: reply.member, role: "youth", alias: "", kx_pk: payload.kx_pk, seq: 0 }],
  });
  app.conv = conv;
  app.lastConvId = conv.id;
  app.outbox = new Outbox(conv, (p) => call(app.socket, "send", p), onOutboxChange);
  app.items = [];
  app.queue = { position: reply.position ?? null, eta: reply.eta_secs ?? null };
  app.endedReason = null;
  go("waiting");
  const pending = app.pending;
  app.pending = [];
  for (const [event, data] of pending) handlers[event](data);
}
