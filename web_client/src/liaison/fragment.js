// Imported first by the liaison page, so this runs before any other module
// code (libsodium included): take the invite secret out of the address bar at
// once. history.replaceState keeps the page and drops "#…" from its URL.
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
