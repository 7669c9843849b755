// What the safety page says, as plain data: [tag, attributes, ...children],
// a child being another such list, a string (text) or null (left out). No
// imports and no DOM, so that two readers build the same markup from it:
//   - build.mjs writes it into each language's youth page as HTML, so the page
//     is readable from the first bytes, long before the script arrives on a
//     slow phone (docs/design/web-client.md, "The first screen in the HTML");
//   - screens/safety.js turns it into elements when the script renders the
//     screen (first over the written markup, then on a language switch or
//     when the opening hours arrive).
// `t` looks a key up in one language's catalog; `ctx` holds what only the
// running page knows: {emergency, telHref, hours, retrying}. The build passes
// the defaults (emergency "112", no hours, the button disabled until the
// script can act on it).

export function safetyContent(t, ctx) {
  const emergency = ctx.emergency;
  return [
    ["h1", { tabindex: "-1", text: t("youth.safety.heading") }],
    ["p", { class: "lead", text: t("youth.safety.intro") }],
    [
      "section",
      { class: "card danger", "aria-labelledby": "s-danger" },
      ["h2", { id: "s-danger", text: t("youth.safety.danger_heading") }],
      ["p", {}, ["a", { href: ctx.telHref(emergency), class: "tel", text: t("youth.safety.danger_body", { emergency }) }]],
    ],
    [
      "section",
      { class: "card", "aria-labelledby": "s-what" },
      ["h2", { id: "s-what", text: t("youth.safety.what_heading") }],
      ["p", { text: t("youth.safety.what_is") }],
      ["p", { text: t("youth.safety.what_isnt") }],
    ],
    [
      "section",
      { class: "card", "aria-labelledby": "s-report" },
      ["h2", { id: "s-report", text: t("youth.safety.report_heading") }],
      ["p", { text: t("youth.safety.report_body") }],
    ],
    // The privacy notice: a details element, so it opens in place (no
    // navigation, no history entry) and stays closed unless asked for.
    [
      "details",
      { class: "card privacy", id: "privacy" },
      ["summary", { id: "s-privacy", text: t("youth.safety.privacy_heading") }],
      ["p", { text: t("youth.safety.privacy_kept") }],
      ["p", { text: t("youth.safety.privacy_never") }],
      ["p", { text: t("youth.safety.privacy_more") }],
    ],
    [
      "section",
      { class: "card", "aria-labelledby": "s-history" },
      ["h2", { id: "s-history", text: t("youth.safety.history_heading") }],
      ["p", { text: t("youth.safety.history_body") }],
      ["ul", { class: "browsers" }, ...["chrome", "safari", "firefox", "samsung"].map((b) => ["li", { text: t(`youth.safety.private_${b}`) }])],
      ["p", { text: t("youth.safety.private_after") }],
    ],
    [
      "section",
      { class: "card exit-info", "aria-labelledby": "s-exit" },
      ["h2", { id: "s-exit", text: t("youth.safety.exit_heading") }],
      ["p", { text: t("youth.safety.exit_body") }],
      ["p", { text: t("youth.exit.shift_hint") }],
      ["p", { class: "try", text: t("youth.safety.exit_try") }],
    ],
    ctx.hours
      ? [
          "section",
          { class: "card", "aria-labelledby": "s-hours" },
          ["h2", { id: "s-hours", text: t("youth.safety.hours_heading") }],
          ["p", { text: ctx.hours }],
        ]
      : null,
    // The notice line (lib/notice.js), empty until something goes wrong.
    ["p", { class: "notice empty", role: "alert", id: "notice", text: "" }],
    // Sticky at the foot of the screen (youth.css): reachable on a small
    // phone without scrolling past the whole page.
    [
      "div",
      { class: "actions go-on" },
      ["button", { type: "button", class: "primary", id: "go-on", disabled: ctx.retrying, text: t("youth.safety.continue") }],
    ],
  ];
}
