// Incoming warm transfers: a card above everything until this counsellor
// accepts (a fresh key pair; the reply seats them like a claim) or declines.
import * as e2e from "../lib/e2e.js";
import { call } from "../lib/calls.js";
import { h, keepFocus, mount } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { addConversation, select } from "./conversation.js";
import { takeHandover } from "./handover.js";
import { idLabel } from "./labels.js";
import { app } from "./state.js";
import { errorText, renderTags } from "./view.js";

export function renderOffers() {
  const box = document.getElementById("offers");
  if (!box) return;
  keepFocus(() =>
    mount(
      box,
      [...app.offers.values()].map((o) => {
        const hid = `offer-h-${o.conversation}`;
        return h(
          "section",
          { class: "card offer", id: `offer-${o.conversation}`, "data-conversation": o.conversation, "aria-labelledby": hid },
          h("h2", { id: hid, text: t("staff.offer.heading") }),
          h("p", { text: t("staff.offer.body", { from: String(o.from_alias || ""), name: idLabel(o.conversation) }) }),
          renderTags(o),
          o.handover === true ? h("p", { class: "hint with-handover", text: t("staff.offer.with_handover") }) : null,
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", class: "primary offer-accept", onclick: () => onOfferAnswer(o, true), text: t("staff.offer.accept") }),
            h("button", { type: "button", class: "secondary offer-decline", onclick: () => onOfferAnswer(o, false), text: t("staff.offer.decline") }),
          ),
        );
      }),
    ),
  );
}

async function onOfferAnswer(offer, accept) {
  app.offers.delete(offer.conversation);
  renderOffers();
  if (!accept) {
    await call(app.socket, "transfer_answer", { conversation: offer.conversation, accept: false });
    return;
  }
  // A fresh key pair, as for a claim: the new counsellor is a new member.
  const keys = e2e.keypair();
  const reply = await call(app.socket, "transfer_answer", { conversation: offer.conversation, accept: true, kx_pk: e2e.b64(keys.pk) });
  if (!reply.ok) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    setNotice(app, errorText(reply.error));
    return;
  }
  let entry;
  try {
    entry = addConversation(reply, keys, reply.pseudonym || offer.pseudonym, { language: offer.language, age_band: offer.age_band, topic: offer.topic });
  } catch {
    setNotice(app, errorText("internal"));
    return;
  }
  entry.youthAway = reply.youth_online === false;
  takeHandover(entry, reply, offer.from_alias);
  select(entry.conv.id);
}
