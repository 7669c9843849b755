"""Bare aiohttp WebSocket relay (baseline 1). Run:
``python -m loadtests.baselines.bare_aiohttp --port 9001``.

Frames are JSON text: ``{"t": event, "id"?: n, "d": payload}`` from clients,
``{"t": "ack", "id": n, "d": reply}`` and ``{"t": event, "d": payload}`` back.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from aiohttp import WSMsgType, web

from loadtests import gcstats

MAX_FRAME_BYTES = 64 * 1024

Members = dict[str, web.WebSocketResponse]
MEMBERS: web.AppKey[Members] = web.AppKey("members", dict)
CONVERSATIONS: web.AppKey[dict[str, set[str]]] = web.AppKey("conversations", dict)


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    members, convs = request.app[MEMBERS], request.app[CONVERSATIONS]
    mine: dict[str, str] = {}  # conversation -> this connection's member id
    dumps, loads = json.dumps, json.loads
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            frame = loads(msg.data)
            event, data = frame.get("t"), frame.get("d") or {}
            reply: dict[str, Any] = {"ok": True}
            if event == "send":
                conv = data["conversation"]
                sender = mine.get(conv, "")
                for box in data["boxes"]:
                    peer = members.get(box["to"])
                    if peer is not None:
                        await peer.send_str(dumps({"t": "box", "d": {
                            "conversation": conv, "from": sender, "to": box["to"],
                            "epoch": data["epoch"], "seq": data["seq"],
                            "nonce": box["nonce"], "ct": box["ct"]}}))
                reply["seq"] = data["seq"]
            elif event == "typing":
                conv = data["conversation"]
                sender = mine.get(conv, "")
                for member in convs.get(conv, ()):
                    peer = members.get(member)
                    if member != sender and peer is not None:
                        await peer.send_str(dumps({"t": "typing", "d": {
                            "conversation": conv, "from": sender,
                            "active": data["active"]}}))
            elif event == "join":
                mine[data["conversation"]] = data["member"]
                members[data["member"]] = ws
                convs.setdefault(data["conversation"], set()).add(data["member"])
            if "id" in frame:
                await ws.send_str(dumps({"t": "ack", "id": frame["id"], "d": reply}))
    finally:
        for conv, member in mine.items():
            if members.get(member) is ws:
                del members[member]
            convs.pop(conv, None)
    return ws


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def make_app() -> web.Application:
    app = web.Application()
    app[MEMBERS] = {}
    app[CONVERSATIONS] = {}
    app.router.add_get("/ws", relay)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = make_app()
    gcstats.install(app)
    web.run_app(app, host=args.host, port=args.port, print=None,
                access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
