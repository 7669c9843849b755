// The quick exit before the bundle has loaded (docs/security-design.md,
// "Quick exit"). The build minifies this file and puts it inline in the youth
// page's <head>, before the stylesheet (a classic script waits for stylesheets
// above it), and publishes its sha256 in dist/manifest.json; the server adds
// exactly that hash to the page's CSP. So it runs from the first bytes of
// HTML, while the bundle may still be seconds away on a slow phone.
//
// Plain ES5, no imports: it must run on its own. It wipes no keys (there are
// none before the bundle runs); it blanks the page and leaves with
// location.replace(), so Back cannot return to the page.
//
// Hand-over to the bundle (src/youth/exit.js):
// - Clicks: this listens on window in the bubble phase. The bundle listens on
//   document in the capture phase and stops propagation, so once it is
//   installed this listener never sees an exit click: the bundle's full wipe
//   always wins.
// - Shift×3: this counts with the same rule as the bundle and, on the third
//   press, clicks the first exit control. With the bundle installed that click
//   reaches the bundle's handler (full wipe, then replace); without it, it
//   reaches the click listener here. This keyup listener was added first, so it
//   runs before the bundle's; when both counted the same three presses, the
//   bundle's exit runs from this click, and then its own count reaches three
//   on an already wiped page and calls location.replace("/exit") again. A
//   second replace() only restarts the same history-replacing navigation to
//   the same hop: harmless, and no history entry is added. Presses made before
//   the bundle loaded still count here.
(function () {
  var EXIT_PATH = "/exit";
  var SHIFT_WINDOW_MS = 5000;
  var SHIFT_PRESSES = 3;

  function leave() {
    if (document.body) document.body.hidden = true;
    window.location.replace(EXIT_PATH);
  }

  window.addEventListener("click", function (e) {
    var el = e.target;
    if (!el || !el.closest || !el.closest("[data-quick-exit]")) return;
    e.preventDefault();
    leave();
  });

  var down = false;
  var alone = false;
  var run = [];
  window.addEventListener("keydown", function (e) {
    if (e.key === "Shift") {
      if (!e.repeat) {
        down = true;
        alone = true;
      }
      return;
    }
    alone = false;
    run = [];
  }, true);
  window.addEventListener("keyup", function (e) {
    if (e.key !== "Shift") return;
    var counted = down && alone;
    down = false;
    alone = false;
    if (!counted) return;
    var now = Date.now();
    if (run.length && now - run[run.length - 1] > SHIFT_WINDOW_MS) run = [];
    run.push(now);
    if (run.length < SHIFT_PRESSES) return;
    run = [];
    // The first exit control: the red button, or the decoy's close control
    // (the bundle swaps the button for it on the decoy screen).
    var control = document.querySelector("[data-quick-exit]");
    if (control) control.click();
    else leave();
  }, true);
  window.addEventListener("pointerdown", function () {
    alone = false;
  }, true);
  window.addEventListener("blur", function () {
    down = false;
    alone = false;
  });
})();
