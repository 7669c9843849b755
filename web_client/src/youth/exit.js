// Quick exit (docs/security-design.md, "Quick exit"). Installed before anything
// else runs, so the button and Shift×3 work while the rest is still loading.
//
// On activation, synchronously and in this order: blank the page; let the app
// tell the server "panic" (best effort, not awaited), disconnect and zero
// its keys; clear inputs and the DOM; neutral title; location.replace() to the
// same-origin exit hop, which answers Clear-Site-Data and redirects to the
// configured neutral site. Never location.href (it would leave this page in
// the history) and never window.open.

export const EXIT_PATH = "/exit";
const SHIFT_WINDOW_MS = 5000; // each press within 5 s of the previous one
const SHIFT_PRESSES = 3;
// The page's own title is already neutral ("Anteckningar"/"Notes"); keep it.
let neutralTitle = "";

let wiped = false;
let appWipe = () => {};

/** The one wipe used by the exit button, Shift×3, pagehide and pageshow. */
export function wipePage(reason) {
  if (wiped) return;
  wiped = true;
  const body = document.body;
  // 1. Blank the page before anything else can paint.
  if (body) body.hidden = true;
  document.documentElement.classList.add("wiped");
  // 2.–4. The app: leave ("panic"; "closed" on pagehide) without waiting, disconnect, memzero keys.
  try {
    appWipe(reason);
  } catch {
    // Nothing may stop the exit.
  }
  // 5. Inputs first (their values and undo stacks), then the whole DOM.
  for (const el of document.querySelectorAll("input, textarea, select")) {
    try {
      el.value = "";
    } catch {
      // file inputs etc.: removed with the DOM below
    }
  }
  if (body) body.replaceChildren();
  const head = document.head;
  if (head) for (const el of [...head.querySelectorAll("meta[name=description]")]) el.remove();
  // 6. A title that says nothing.
  document.title = neutralTitle;
}

export function quickExit() {
  wipePage("panic");
  // replace(): the chat's history entry becomes the exit hop, so Back cannot return.
  window.location.replace(EXIT_PATH);
}

export function isWiped() {
  return wiped;
}

/**
 * Wire the exit controls. `wipeApp(reason)` is called once with "panic" or
 * "pagehide"; it must not throw or wait.
 */
export function installQuickExit(wipeApp) {
  appWipe = wipeApp;
  neutralTitle = document.title;
  // Any element with data-quick-exit (the red button, the assistive-technology
  // link, the decoy's close button) leaves at once. Capture phase on the
  // document so nothing else sees the event first.
  const onActivate = (event) => {
    const target = event.target instanceof Element ? event.target.closest("[data-quick-exit]") : null;
    if (!target) return;
    event.preventDefault();
    event.stopPropagation();
    quickExit();
  };
  document.addEventListener("click", onActivate, true);

  // Shift pressed on its own three times, each within 5 s of the previous one.
  // Shift used as a modifier (Shift+A, shift-click) does not count, and any
  // other key breaks the run, so typing capitals never triggers an exit.
  let shiftDown = false;
  let shiftAlone = false;
  let run = [];
  window.addEventListener(
    "keydown",
    (e) => {
      if (e.key === "Shift") {
        if (!e.repeat) {
          shiftDown = true;
          shiftAlone = true;
        }
        return;
      }
      shiftAlone = false;
      run = [];
    },
    true,
  );
  window.addEventListener(
    "keyup",
    (e) => {
      if (e.key !== "Shift") return;
      const counted = shiftDown && shiftAlone;
      shiftDown = false;
      shiftAlone = false;
      if (!counted) return;
      const now = performance.now();
      if (run.length && now - run[run.length - 1] > SHIFT_WINDOW_MS) run = [];
      run.push(now);
      if (run.length >= SHIFT_PRESSES) {
        run = [];
        quickExit();
      }
    },
    true,
  );
  window.addEventListener(
    "pointerdown",
    () => {
      shiftAlone = false;
    },
    true,
  );
  window.addEventListener("blur", () => {
    shiftDown = false;
    shiftAlone = false;
  });

  // Leaving the page in any other way wipes the same things. If the browser
  // restores the page from the back/forward cache, leave again at once.
  window.addEventListener("pagehide", () => wipePage("pagehide"));
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) {
      wiped = false;
      wipePage("pageshow");
      window.location.replace(EXIT_PATH);
    }
  });
}
