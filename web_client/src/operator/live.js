// The live view: queue length, longest and median wait, counsellors on duty
// and their load, active conversations, abandoned-in-queue today, all pushed
// by the server (`ops`, every 2 s) — no reload — and a hand-drawn SVG line of
// the queue length over the last hours.
import { formatClock, formatDuration, h, mount } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { queueChart } from "./chart.js";

function stat(id, label, value) {
  return h("div", { class: "stat" }, h("dt", { id: `${id}-label`, text: label }), h("dd", { id, "aria-labelledby": `${id}-label`, text: value }));
}

/** Draw the live figures into the #ops region (again on every push). */
export function renderOps(ops) {
  const region = document.getElementById("ops");
  if (!region) return;
  if (!ops) {
    mount(region, h("p", { text: t("operator.ops.waiting") }));
    return;
  }
  const counsellors = Array.isArray(ops.counsellors) ? ops.counsellors : [];
  const history = Array.isArray(ops.history) ? ops.history : [];
  mount(
    region,
    h(
      "dl",
      { class: "stats" },
      stat("queue-length", t("operator.ops.queue_length"), String(ops.queue_length ?? 0)),
      stat("longest-wait", t("operator.ops.longest_wait"), formatDuration(ops.longest_wait_secs || 0)),
      stat("median-wait", t("operator.ops.median_wait"), formatDuration(ops.median_wait_secs || 0)),
      stat("active", t("operator.ops.active"), String(ops.active ?? 0)),
      stat("paused", t("operator.ops.paused"), String(ops.paused ?? 0)),
      stat("abandoned", t("operator.ops.abandoned_today"), String(ops.abandoned_today ?? 0)),
    ),
    h("h2", { id: "chart-h", text: t("operator.ops.chart") }),
    queueChart(history, ops.at || Date.now(), "chart-h"),
    h("h2", { id: "c-h", text: t("operator.ops.counsellors") }),
    counsellors.length
      ? h(
          "table",
          { "aria-labelledby": "c-h", id: "counsellors" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("operator.ops.alias") }), h("th", { scope: "col", text: t("operator.ops.on_duty") }), h("th", { scope: "col", text: t("operator.ops.load") }))),
          h(
            "tbody",
            {},
            counsellors.map((c) =>
              h(
                "tr",
                {},
                h("td", { text: String(c.alias || "") }),
                h("td", { text: c.on_duty ? t("operator.ops.yes") : t("operator.ops.no") }),
                h("td", { text: `${c.load ?? 0} / ${c.capacity ?? 0}` }),
              ),
            ),
          ),
        )
      : h("p", { text: t("operator.ops.none") }),
    h("p", { class: "updated", id: "updated", text: t("operator.ops.updated", { time: formatClock(ops.at || Date.now()) }) }),
  );
}

export const liveView = {
  id: "live",
  labelKey: "operator.nav.live",
  render(region, app) {
    mount(region, h("section", { id: "ops", "aria-label": t("operator.ops.heading") }));
    renderOps(app.ops);
  },
  onOps(app) {
    renderOps(app.ops);
  },
};
