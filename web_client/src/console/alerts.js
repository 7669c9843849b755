// Arrivals, for a counsellor whose eyes are on another conversation or
// another window: a short tone (made with WebAudio: no audio file; on by
// default, muted from the bar), the tab title "(3) Console" (waiting +
// unread), and — only if the counsellor asked for them with a click in the
// bar — desktop notifications. None of them carries content: no text, no
// alias, no nickname (the system may show a notification on a locked
// screen), only "a youth is waiting" or "new message" and the conversation's
// colour name (labels.js). Mute and notifications live in page memory.
import { h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { convLabel } from "./labels.js";
import { app } from "./state.js";

export const alerts = { sound: true, notify: false };
let audio = null;
let seenWaiting = new Set();

function tone() {
  if (!alerts.sound) return;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  try {
    audio = audio || new Ctx();
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const now = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, now);
    osc.frequency.setValueAtTime(660, now + 0.12);
    // A soft envelope: no click, quiet enough for a shared office.
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.15, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(now);
    osc.stop(now + 0.32);
  } catch {
    // No sound device: the title and the badges still say it.
  }
}

function canNotify() {
  return typeof window.Notification === "function";
}

function notify(body, conversation) {
  if (!alerts.notify || !canNotify() || window.Notification.permission !== "granted") return;
  try {
    // A fixed tag (one notification per kind replaces the last): no
    // conversation id goes to the operating system's notification store.
    const n = new window.Notification(t("staff.alerts.title"), { body, tag: conversation ? "chat-message" : "chat-queue", silent: true });
    n.onclick = () => {
      window.focus();
      const tab = conversation && document.getElementById(`tab-${conversation}`);
      if (tab) tab.click();
      n.close();
    };
  } catch {
    // Some browsers allow notifications only from a service worker: the tone and title remain.
  }
}

/** The tab title: how many wait in the queue plus how many messages are unread. */
export function updateTitle() {
  const unread = [...app.convs.values()].reduce((s, e) => s + e.unread, 0);
  // Offline youths wait too, but cannot be answered now: not counted.
  const offline = app.queue.entries.filter((e) => e.offline).length;
  const waiting = app.duty.on ? Math.max(0, app.queue.total - offline) : 0;
  const n = unread + waiting;
  document.title = n ? `(${n}) ${t("staff.console_title")}` : t("staff.console_title");
}

/** The queue was drawn: a conversation not seen waiting before is an arrival. */
export function queueArrivals(entries) {
  // An offline youth is no arrival (nobody can answer them now); one seen
  // before (offline, or back after a reconnect) is not announced again.
  const fresh = entries.some((e) => !e.offline && !seenWaiting.has(e.conversation));
  seenWaiting = new Set(entries.map((e) => e.conversation));
  updateTitle();
  if (!fresh || !app.duty.on) return;
  tone();
  notify(t("staff.alerts.waiting"), null);
}

/** A message came into a conversation that is not in front of the counsellor. */
export function messageArrived(entry) {
  updateTitle();
  tone();
  notify(t("staff.alerts.message", { name: convLabel(entry) }), entry.conv.id);
}

async function onNotifyClick() {
  if (!canNotify()) return;
  if (window.Notification.permission === "granted") alerts.notify = !alerts.notify;
  else if (window.Notification.permission === "default") {
    // Asked only here, after the counsellor's click (never on the youth page).
    const answer = await window.Notification.requestPermission();
    alerts.notify = answer === "granted";
  }
  paintAlertButtons();
}

function onSoundClick() {
  alerts.sound = !alerts.sound;
  paintAlertButtons();
}

/** The bar's two toggles: sound, and desktop notifications (where the browser has them). */
export function alertButtons() {
  const denied = canNotify() && window.Notification.permission === "denied";
  return h(
    "span",
    { class: "alert-toggles", id: "alert-toggles" },
    h("button", { type: "button", class: "secondary", id: "sound", "aria-pressed": alerts.sound ? "true" : "false", onclick: onSoundClick, text: t("staff.alerts.sound") }),
    canNotify()
      ? h("button", {
          type: "button",
          class: "secondary",
          id: "notify",
          "aria-pressed": alerts.notify ? "true" : "false",
          disabled: denied,
          title: denied ? t("staff.alerts.notify_denied") : null,
          onclick: onNotifyClick,
          text: t("staff.alerts.notify"),
        })
      : null,
  );
}

function paintAlertButtons() {
  const old = document.getElementById("alert-toggles");
  if (!old) return;
  const focused = document.activeElement && document.activeElement.id;
  old.replaceWith(alertButtons());
  const again = focused && document.getElementById(focused);
  if (again) again.focus();
}
