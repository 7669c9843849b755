// The operator view: queue length, longest and median wait, counsellors on
// duty and their load, active conversations, abandoned-in-queue today, all
// pushed by the server (`ops`, every 2 s) — no reload — and a hand-drawn SVG
// line of the queue length over the last hours.
import { call, connect } from "../lib/calls.js";
import { formatClock, formatDuration, h, mount } from "../lib/dom.js";
import { onLangChange, t } from "../lib/i18n.js";
import { languageSelect, logout, me, renderLogin, session } from "../staff/session.js";
import { queueChart } from "./chart.js";

const ROLES = ["operator", "admin"];
const bar = document.getElementById("bar");
const main = document.getElementById("main");
const app = { socket: null, ops: null, online: true };

function renderBar() {
  mount(
    bar,
    h("h1", { text: t("staff.operator_title") }),
    session.username ? h("span", { class: "who-am-i", text: t("staff.signed_in", { username: session.username, alias: session.alias }) }) : null,
    languageSelect(),
    session.username ? h("button", { type: "button", class: "secondary", id: "logout", onclick: onLogout, text: t("staff.logout") }) : null,
  );
}

function stat(id, label, value) {
  return h("div", { class: "stat" }, h("dt", { id: `${id}-label`, text: label }), h("dd", { id, "aria-labelledby": `${id}-label`, text: value }));
}

function renderOps() {
  const ops = app.ops;
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

function renderPage() {
  renderBar();
  mount(
    main,
    h("h2", { class: "visually-hidden", text: t("operator.ops.heading") }),
    app.online ? null : h("p", { class: "offline", role: "status", text: t("staff.offline") }),
    h("section", { id: "ops", "aria-label": t("operator.ops.heading") }),
  );
  renderOps();
}

async function onLogout() {
  if (app.socket) app.socket.disconnect();
  app.socket = null;
  app.ops = null;
  await logout();
  start();
}

async function start(message = "") {
  document.title = t("staff.operator_title");
  renderBar();
  const who = await me();
  if (!who || !ROLES.includes(who.role)) {
    await renderLogin(main, ROLES, message, () => {
      document.title = t("staff.operator_title");
      renderBar();
    });
  }
  const socket = connect("/staff");
  app.socket = socket;
  socket.on("connect", async () => {
    app.online = true;
    renderPage();
    await call(socket, "ops_watch", { on: true });
  });
  socket.on("disconnect", () => {
    app.online = false;
    renderPage();
  });
  socket.on("connect_error", (err) => {
    if (err && err.message === "session_required") {
      socket.disconnect();
      app.socket = null;
      start(t("staff.session_expired"));
    }
  });
  socket.on("ops", (data) => {
    if (!data || typeof data !== "object") return;
    app.ops = data;
    renderOps();
  });
  renderPage();
}

onLangChange(() => {
  if (app.socket) renderPage();
});

start();
