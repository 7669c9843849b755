// The hand-entered counts form of the Statistics view: outreach activities
// (meetings, seminars, trainings) and other channels (phone, visit) per
// month. Saving replaces the month's value; the server audits old → new
// (POST /staff/api/stats/manual, with the CSRF token kept in memory).
import { h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { jsonFetch, session } from "../staff/session.js";

export const MANUAL_KINDS = ["meeting", "seminar", "training", "phone", "visit"];

/** The form; onSaved(month) runs after a save the server accepted. */
export function manualForm(defaultMonth, onSaved) {
  const status = h("p", { id: "manual-status", class: "manual-status", role: "status", "aria-live": "polite" });
  const month = h("input", { id: "manual-month", name: "month", type: "month", required: true, value: defaultMonth });
  const kind = h(
    "select",
    { id: "manual-kind", name: "kind" },
    MANUAL_KINDS.map((k) => h("option", { value: k, text: t(`operator.stats.values.${k}`) })),
  );
  const count = h("input", { id: "manual-count", name: "count", type: "number", min: "0", max: "100000", step: "1", required: true, inputmode: "numeric" });
  const save = h("button", { type: "submit", id: "manual-save", class: "primary", text: t("operator.stats.manual_save") });

  async function onSubmit(e) {
    e.preventDefault();
    const n = Number(count.value);
    if (!/^\d{4}-\d{2}$/.test(month.value) || count.value === "" || !Number.isInteger(n) || n < 0) {
      status.textContent = t("operator.stats.manual_invalid");
      status.className = "manual-status error";
      return;
    }
    save.disabled = true;
    const { body } = await jsonFetch("/staff/api/stats/manual", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": session.csrf },
      body: JSON.stringify({ month: month.value, kind: kind.value, count: n }),
    });
    save.disabled = false;
    if (body.ok) {
      status.textContent = t("operator.stats.manual_saved", { kind: t(`operator.stats.values.${kind.value}`), month: month.value, count: String(n) });
      status.className = "manual-status ok";
      count.value = "";
      onSaved(month.value);
    } else {
      status.textContent = t("operator.stats.manual_failed", { error: String(body.error || "") });
      status.className = "manual-status error";
    }
  }

  return h(
    "section",
    { class: "manual-entry no-print", "aria-labelledby": "manual-h" },
    h("h3", { id: "manual-h", text: t("operator.stats.manual_heading") }),
    h("p", { class: "hint", text: t("operator.stats.manual_hint") }),
    h(
      "form",
      { id: "manual-form", class: "manual-form", novalidate: true, onsubmit: onSubmit },
      h("div", { class: "field" }, h("label", { for: "manual-month", text: t("operator.stats.month") }), month),
      h("div", { class: "field" }, h("label", { for: "manual-kind", text: t("operator.stats.manual_kind") }), kind),
      h("div", { class: "field" }, h("label", { for: "manual-count", text: t("operator.stats.manual_count") }), count),
      save,
    ),
    status,
  );
}
