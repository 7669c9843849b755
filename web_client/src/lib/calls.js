// socket.io helpers. Every client→server event is a call with exactly one
// reply (protocol.md, "Calls, acks and errors").
import { io } from "socket.io-client";
import { noteReply } from "./trouble.js";

export const CALL_TIMEOUT_MS = 10000;

/** `transports` may name transport classes instead (the youth page's, src/youth/socket-takeover.js). */
export function connect(namespace, transports = ["websocket", "polling"]) {
  return io(namespace, {
    path: "/socket.io/",
    // WebSocket first; long-polling only if WebSocket cannot be opened.
    transports,
    tryAllTransports: true,
    // A fresh Manager per call: "start again" and sign-in again must not reuse
    // a socket that still carries the old listeners.
    forceNew: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 4000,
    timeout: 10000,
  });
}

/** Emit with an ack; resolves to the reply, or {ok:false, error:"timeout"|"offline"}. */
export async function call(socket, event, payload, timeoutMs = CALL_TIMEOUT_MS) {
  if (!socket || !socket.connected) return { ok: false, error: "offline" };
  try {
    const reply = await socket.timeout(timeoutMs).emitWithAck(event, payload);
    if (reply && typeof reply === "object") {
      noteReply(event, reply); // the shared live state's trouble starts or ends (trouble.js)
      return reply;
    }
    return { ok: false, error: "bad_reply" };
  } catch {
    return { ok: false, error: "timeout" };
  }
}
