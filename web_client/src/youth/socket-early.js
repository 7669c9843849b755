// The youth page's socket, opened while the bundle is still on its way
// (docs/performance.md, "The youth page on a slow phone"). On slow 3G every
// request and the WebSocket handshake each wait a 2 s round trip; opened by
// the bundle, the handshake's round trip came after the script's, and chat
// was ready only after both. The build puts this file inline in the youth
// page's <head>, right after the early quick exit (which stays the first
// script), and publishes its sha256 for the page's CSP, like the exit's.
//
// It opens the engine.io WebSocket and joins the /youth namespace exactly as
// socket.io-client would (the server then pushes the status behind its
// connect answer); it holds what arrives, answers the server's pings, and
// hands all of it to the bundle, which takes it once (src/youth/socket-takeover.js)
// and carries on as if it had opened the socket itself. If the socket has
// closed by then, the bundle opens its own, as before. Nothing is stored: the
// socket lives in this page's memory and goes with it.
//
// Plain ES5, no imports: it must run on its own.
(function () {
  if (typeof WebSocket !== "function") return;
  var CONNECT = "40/youth,"; // socket.io CONNECT to /youth, no auth: what socket.io-client sends
  var ws;
  try {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/socket.io/?EIO=4&transport=websocket");
  } catch (e) {
    return;
  }
  ws.binaryType = "arraybuffer";
  var early = { ws: ws, held: [], joinSent: false };
  ws.onmessage = function (e) {
    // engine.io ping: answered here until the bundle takes over.
    if (e.data === "2") {
      ws.send("3");
      return;
    }
    early.held.push(e.data);
    if (!early.joinSent && typeof e.data === "string" && e.data.charAt(0) === "0") {
      ws.send(CONNECT);
      early.joinSent = true;
    }
  };
  ws.onerror = function () {};
  Object.defineProperty(window, "__youthSocket", {
    configurable: true,
    value: function () {
      delete window.__youthSocket;
      ws.onmessage = ws.onerror = null;
      // Closing or closed: the bundle opens its own.
      return ws.readyState <= 1 ? early : null;
    },
  });
})();
