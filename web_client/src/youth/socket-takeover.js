// Taking over the socket the page's inline script opened before the bundle
// arrived (src/youth/socket-early.js; why: docs/performance.md, "The youth
// page on a slow phone"). socket.io-client builds its WebSocket transport
// from the class given here: the first time, it is handed the open socket
// and what arrived on it (engine.io's open packet, and usually the /youth
// connect answer and the pushed status), replayed in order as if they had
// just come; later connections (after a drop) open their own as usual.
import { WebSocket as WebSocketTransport, XHR } from "socket.io-client";

// What the inline script sent to join /youth; socket.io-client sends the same
// once the replayed open packet reaches it, and that second one is dropped.
const JOIN = "40/youth,";

function takeEarly() {
  const take = window.__youthSocket;
  return typeof take === "function" ? take() : null;
}

class EarlyWebSocket extends WebSocketTransport {
  createSocket(uri, protocols, opts) {
    const early = takeEarly();
    if (!early) return super.createSocket(uri, protocols, opts);
    this.held = early.held;
    this.dropJoin = early.joinSent;
    return early.ws;
  }

  addEventListeners() {
    super.addEventListeners();
    const held = this.held;
    this.held = null;
    if (!held || this.ws.readyState !== 1) return; // still connecting: its own open event comes
    // The socket opened before the bundle: its open event has passed. Replay
    // after the engine has set this transport up (it does so right after
    // doOpen returns), before any later frame (a task) can arrive.
    Promise.resolve().then(() => {
      if (this.readyState !== "opening") return;
      this.onOpen();
      for (const data of held) {
        if (this.readyState !== "open") return;
        this.onData(data);
      }
    });
  }

  doWrite(packet, data) {
    if (this.dropJoin && data === JOIN) {
      this.dropJoin = false;
      return;
    }
    super.doWrite(packet, data);
  }
}

/** The transports for the youth's connection: as lib/calls.js's, WebSocket first. */
export const YOUTH_TRANSPORTS = [EarlyWebSocket, XHR];

/** Close the inline script's socket if the bundle never took it (quick exit, wipe). */
export function dropEarlySocket() {
  const early = takeEarly();
  if (early) early.ws.close();
}
