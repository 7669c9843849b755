// Imported first by the liaison page, so this runs before any other module
// code (the crypto included): take the invite secret out of the address bar at
// once. history.replaceState keeps the page and drops "#…" from its URL.
// Only a hand-made link has a fragment now (the console hands out a plain
// address and a code to paste): Chromium has already written the URL it
// committed to History and Sessions before any script runs, so this cannot
// undo that; it keeps the code off the screen and out of the current entry.
let captured = "";
if (location.hash.length > 1) {
  captured = location.hash.slice(1);
  history.replaceState(null, "", location.pathname + location.search);
}

/** The fragment as it was at load, once; later calls get "". */
export function takeFragment() {
  const f = captured;
  captured = "";
  return f;
}
