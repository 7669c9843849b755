// The operator page: sign-in, the bar, and a navigation between its views
// (views.js). The live figures arrive by push (`ops`) whichever view is shown.
import { call, connect } from "../lib/calls.js";
import { h, mount } from "../lib/dom.js";
import { onLangChange, t } from "../lib/i18n.js";
import { troubleBanner } from "../lib/trouble.js";
import { languageSelect, logout, me, renderLogin, session } from "../staff/session.js";
import { VIEWS } from "./views.js";

const ROLES = ["operator", "admin"];
const bar = document.getElementById("bar");
const main = document.getElementById("main");
const app = { socket: null, ops: null, online: true, view: VIEWS[0].id };

function currentView() {
  return VIEWS.find((v) => v.id === app.view) || VIEWS[0];
}

function renderBar() {
  mount(
    bar,
    h("h1", { text: t("staff.operator_title") }),
    session.username ? h("span", { class: "who-am-i", text: t("staff.signed_in", { username: session.username, alias: session.alias }) }) : null,
    languageSelect(),
    session.username ? h("button", { type: "button", class: "secondary", id: "logout", onclick: onLogout, text: t("staff.logout") }) : null,
  );
}

function nav() {
  if (VIEWS.length < 2) return null;
  return h(
    "nav",
    { class: "operator-nav", "aria-label": t("operator.nav.label") },
    h(
      "ul",
      {},
      VIEWS.map((v) =>
        h(
          "li",
          {},
          h("button", {
            type: "button",
            id: `nav-${v.id}`,
            class: v.id === app.view ? "current" : "secondary",
            "aria-current": v.id === app.view ? "page" : null,
            onclick: () => showView(v.id),
            text: t(v.labelKey),
          }),
        ),
      ),
    ),
  );
}

function showView(id) {
  if (id === app.view) return;
  const before = currentView();
  if (before.leave) before.leave();
  app.view = id;
  renderPage();
}

function renderPage() {
  renderBar();
  const view = currentView();
  const region = h("div", { id: `view-${view.id}`, class: "operator-view" });
  mount(
    main,
    h("h2", { class: "visually-hidden", text: t("operator.ops.heading") }),
    nav(),
    app.online ? null : h("p", { class: "offline", role: "status", text: t("staff.offline") }),
    region,
  );
  view.render(region, app);
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
  socket.on("partners_changed", (data) => {
    const view = currentView();
    if (view.onPartnersChanged) view.onPartnersChanged(app, data);
  });
  socket.on("ops", (data) => {
    if (!data || typeof data !== "object") return;
    app.ops = data;
    const view = currentView();
    if (view.onOps) view.onOps(app);
  });
  renderPage();
}

onLangChange(() => {
  if (app.socket) renderPage();
});

// The chat service cannot reach its shared state (a call answered
// `unavailable`, lib/trouble.js): a banner until a call gets through again.
troubleBanner("staff.trouble");
start();
