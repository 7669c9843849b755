// The form that adds or edits one partner-directory entry (operator view
// "Partners", partners.js). Lists (districts, search words) are typed
// comma-separated. The server checks the whole entry; a refusal names the
// field, which is marked and focused, and nothing is saved.
import { h, NO_TRACE_INPUT, uid } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { kindName } from "../lib/partner-kinds.js";

const TEXTS = [
  ["code", 48],
  ["name", 120],
  ["name_en", 120],
  ["municipality", 64],
  ["districts", 600],
  ["phone", 32],
  ["url", 200],
  ["hours_sv", 200],
  ["hours_en", 200],
  ["words_sv", 600],
  ["words_en", 600],
];

function listText(items) {
  return Array.isArray(items) ? items.join(", ") : "";
}

function listOf(text) {
  return String(text || "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The form's starting values for `partner` (null: a new entry). */
export function draftOf(partner) {
  const p = partner || {};
  return {
    isNew: !partner,
    code: p.code || "",
    name: p.name || "",
    name_en: p.name_en || "",
    kind: p.kind || "",
    municipality: p.municipality || "",
    districts: listText(p.districts),
    phone: p.phone || "",
    url: p.url || "",
    hours_sv: (p.hours && p.hours.sv) || "",
    hours_en: (p.hours && p.hours.en) || "",
    words_sv: listText(p.words && p.words.sv),
    words_en: listText(p.words && p.words.en),
    notes: p.notes || "",
    field: "",
    error: "",
  };
}

/** The request body for the API (the code goes in the path when editing). */
export function bodyOf(d) {
  const body = {
    name: d.name.trim(),
    name_en: d.name_en.trim(),
    kind: d.kind,
    municipality: d.municipality.trim(),
    districts: listOf(d.districts),
    phone: d.phone.trim(),
    url: d.url.trim(),
    hours: { sv: d.hours_sv.trim(), en: d.hours_en.trim() },
    notes: d.notes.trim(),
    words: { sv: listOf(d.words_sv), en: listOf(d.words_en) },
  };
  if (d.isNew) body.code = d.code.trim();
  return body;
}

// A refused field may be a whole table (hours, words): mark its inputs.
function refused(d, name) {
  return Boolean(d.field) && (d.field === name || name.startsWith(`${d.field}_`));
}

function input(d, name, max) {
  const id = `pf-${name}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: t(`operator.partners.field.${name}`) }),
    h("input", {
      id,
      name,
      type: "text",
      maxlength: String(max),
      value: d[name],
      dir: ["phone", "url", "code"].includes(name) ? "ltr" : null,
      "aria-invalid": refused(d, name) ? "true" : null,
      ...NO_TRACE_INPUT,
      oninput: (e) => (d[name] = e.target.value),
    }),
  );
}

/** The form; `onSave(draft)` and `onCancel()` are the view's. */
export function partnerForm(d, kinds, onSave, onCancel) {
  const kindId = uid("k");
  const notesId = "pf-notes";
  return h(
    "form",
    {
      class: "partner-form",
      id: "partner-form",
      "aria-labelledby": "pf-h",
      onsubmit: (e) => {
        e.preventDefault();
        onSave(d);
      },
    },
    h("h3", { id: "pf-h", text: d.isNew ? t("operator.partners.new_heading") : t("operator.partners.edit_heading", { code: d.code }) }),
    TEXTS.filter(([name]) => d.isNew || name !== "code").map(([name, max]) => input(d, name, max)),
    h(
      "div",
      { class: "field" },
      h("label", { for: kindId, text: t("operator.partners.field.kind") }),
      h(
        "select",
        { id: kindId, name: "kind", "aria-invalid": refused(d, "kind") ? "true" : null, onchange: (e) => (d.kind = e.target.value) },
        h("option", { value: "", text: t("operator.partners.choose_kind"), selected: !d.kind }),
        kinds.map((k) => h("option", { value: k, text: kindName(k), selected: d.kind === k })),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: notesId, text: t("operator.partners.field.notes") }),
      h("textarea", { id: notesId, name: "notes", rows: "3", maxlength: "500", value: d.notes, "aria-invalid": refused(d, "notes") ? "true" : null, ...NO_TRACE_INPUT, oninput: (e) => (d.notes = e.target.value) }),
    ),
    h("p", { class: "hint", text: t("operator.partners.lists_hint") }),
    d.error ? h("p", { class: "form-error", id: "partner-error", role: "alert", text: d.error }) : null,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", id: "partner-save", text: t("operator.partners.save") }),
      h("button", { type: "button", class: "secondary", id: "partner-cancel", onclick: onCancel, text: t("operator.partners.cancel") }),
    ),
  );
}
