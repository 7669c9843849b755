// Staff sign-in shared by the console and the operator view: password + TOTP
// to POST /staff/api/login; the server sets the __Host-session cookie (HttpOnly,
// so this page never sees it) and returns the CSRF token, kept in memory only.
import { h, mount, uid } from "../lib/dom.js";
import { languages, lang, onLangChange, setLang, t } from "../lib/i18n.js";
import { noteReply } from "../lib/trouble.js";

const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json" };

export const session = { csrf: "", username: "", role: "", alias: "" };

/** fetch with the session cookie; resolves to {status, body}, body always an object. */
export async function jsonFetch(url, options) {
  try {
    const res = await fetch(url, { credentials: "same-origin", cache: "no-store", ...options });
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (body && typeof body === "object") {
      noteReply((options && options.method) || "GET", body); // trouble.js: `unavailable` shows the banner
      return { status: res.status, body };
    }
    return { status: res.status, body: { ok: false, error: res.ok ? "bad_reply" : `http_${res.status}` } };
  } catch {
    return { status: 0, body: { ok: false, error: "offline" } };
  }
}

/** The current session, or null when signed out. */
export async function me() {
  const { body } = await jsonFetch("/staff/api/me", { method: "GET", headers: { Accept: "application/json" } });
  if (!body.ok) return null;
  Object.assign(session, { csrf: body.csrf || "", username: body.username || "", role: body.role || "", alias: body.alias || "" });
  // The centre's canned texts come with the session (docs/protocol.md); only the console uses them.
  session.canned = Array.isArray(body.canned) ? body.canned : [];
  return session;
}

export async function login(username, password, totp) {
  const { body } = await jsonFetch("/staff/api/login", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ username, password, totp }),
  });
  if (body.ok) {
    Object.assign(session, { csrf: body.csrf || "", username, role: body.role || "", alias: body.alias || "" });
  }
  return body;
}

export async function logout() {
  await jsonFetch("/staff/api/logout", {
    method: "POST",
    headers: { ...JSON_HEADERS, "X-CSRF-Token": session.csrf },
    body: "{}",
  });
  Object.assign(session, { csrf: "", username: "", role: "", alias: "" });
}

/** A language <select> for the staff bar. */
export function languageSelect(onChange) {
  const select = h(
    "select",
    { class: "lang", "aria-label": `${t("staff.language")} / Language` },
    languages().map((l) => h("option", { value: l.code, lang: l.code, text: l.name, selected: l.code === lang() })),
  );
  select.addEventListener("change", () => {
    setLang(select.value);
    if (onChange) onChange();
  });
  return select;
}

/**
 * Render the sign-in form into `main`; resolves once signed in with one of
 * `roles`. The inputs leave nothing in autofill or the spell-checker. The
 * form re-renders itself (keeping what was typed) when the language changes;
 * `onLang` lets the caller redraw its own header too.
 */
export function renderLogin(main, roles, message = "", onLang = null) {
  return new Promise((resolve) => {
    let done = false;
    let errorText = message;
    const noTrace = { autocomplete: "off", autocorrect: "off", autocapitalize: "off", spellcheck: "false" };
    let form = null;

    const build = () => {
      const kept = form
        ? { u: form.elements.namedItem("username").value, p: form.elements.namedItem("password").value, c: form.elements.namedItem("totp").value }
        : { u: "", p: "", c: "" };
      const ids = { u: uid("u"), p: uid("p"), c: uid("c") };
      form = h(
        "form",
        { class: "login", novalidate: true, onsubmit: onSubmit },
        h("h1", { tabindex: "-1", text: t("staff.login.heading") }),
        h("div", { class: "field" }, h("label", { for: ids.u, text: t("staff.login.username") }), h("input", { id: ids.u, name: "username", type: "text", required: true, value: kept.u, ...noTrace })),
        h("div", { class: "field" }, h("label", { for: ids.p, text: t("staff.login.password") }), h("input", { id: ids.p, name: "password", type: "password", required: true, value: kept.p, ...noTrace })),
        h(
          "div",
          { class: "field" },
          h("label", { for: ids.c, text: t("staff.login.totp") }),
          h("input", { id: ids.c, name: "totp", type: "text", inputmode: "numeric", pattern: "[0-9]*", maxlength: "8", required: true, value: kept.c, ...noTrace }),
        ),
        h("p", { class: ["notice", errorText ? "" : "empty"], role: "alert", id: "login-error", text: errorText }),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "login-submit", text: t("staff.login.submit") })),
      );
      mount(main, form);
    };

    async function onSubmit(e) {
      e.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      const u = form.elements.namedItem("username").value.trim();
      const p = form.elements.namedItem("password").value;
      const c = form.elements.namedItem("totp").value.replace(/\s+/g, "");
      const reply = await login(u, p, c);
      button.disabled = false;
      form.elements.namedItem("password").value = "";
      form.elements.namedItem("totp").value = "";
      if (reply.ok && roles.includes(reply.role)) {
        done = true;
        resolve(session);
        return;
      }
      if (reply.ok) {
        await logout();
        errorText = t("staff.login.wrong_role");
      } else if (reply.error === "bad_credentials") errorText = t("staff.login.bad_credentials");
      else if (reply.error === "locked_out") errorText = t("staff.login.locked_out", { secs: (reply.info && reply.info.retry_after_secs) || 60 });
      else if (reply.error === "bad_origin") errorText = t("staff.login.bad_origin");
      else errorText = t("staff.login.generic");
      const el = form.querySelector("#login-error");
      el.textContent = errorText;
      el.classList.remove("empty");
      form.elements.namedItem("username").focus();
    }

    onLangChange(() => {
      if (done) return;
      if (onLang) onLang();
      build();
    });
    build();
    form.querySelector("h1").focus();
  });
}
