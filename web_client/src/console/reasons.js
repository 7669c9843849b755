// The contact-reason checkboxes, shown both in the tools and in the end
// dialog: both edit the same entry.reasons, so a tag set in one shows in the
// other, and either marks them unsaved.
import { h, uid } from "../lib/dom.js";
import { codeLabel } from "./view.js";

/** One checkbox per topic code, bound to entry.reasons; `name` tells the two places apart. */
export function reasonChecks(entry, topics, name) {
  return topics.map((code) => {
    const id = uid(name);
    return h(
      "div",
      { class: "field check" },
      h("input", {
        type: "checkbox",
        id,
        name,
        value: code,
        checked: entry.reasons.has(code),
        onchange: (e) => {
          if (e.target.checked) entry.reasons.add(code);
          else entry.reasons.delete(code);
          entry.reasonsSaved = false;
        },
      }),
      h("label", { for: id, text: codeLabel("topics", code) }),
    );
  });
}
