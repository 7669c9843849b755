"""Stock python-socketio relay on aiohttp (baseline 2). Run:
``python -m loadtests.baselines.stock_socketio --port 9002``.

Every python-socketio/engine.io default is left as shipped (async handlers,
ping interval, the interpreter's GC) except the CORS origin check, which is
disabled because the generator is not a browser. Namespaces ``/youth`` and
``/staff`` exist so packets carry the same namespace prefix as chatserver's.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
from aiohttp import web

from loadtests import gcstats

NAMESPACES = ("/youth", "/staff")


def make_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
    app = web.Application()
    sio.attach(app)
    # member id -> (sid, namespace); sid -> {conversation: member}
    members: dict[str, tuple[str, str]] = {}
    mine: dict[str, dict[str, str]] = {}
    convs: dict[str, set[str]] = {}

    for ns in NAMESPACES:
        def register(ns: str = ns) -> None:
            @sio.on("connect", namespace=ns)
            async def connect(sid: str, environ: Any, auth: Any = None) -> None:
                mine[sid] = {}

            @sio.on("disconnect", namespace=ns)
            async def disconnect(sid: str, *args: Any) -> None:
                for conv, member in mine.pop(sid, {}).items():
                    if members.get(member, ("",))[0] == sid:
                        del members[member]
                    convs.pop(conv, None)

            @sio.on("join", namespace=ns)
            async def join(sid: str, data: dict[str, Any]) -> dict[str, Any]:
                mine[sid][data["conversation"]] = data["member"]
                members[data["member"]] = (sid, ns)
                convs.setdefault(data["conversation"], set()).add(data["member"])
                return {"ok": True}

            @sio.on("send", namespace=ns)
            async def send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
                conv = data["conversation"]
                sender = mine.get(sid, {}).get(conv, "")
                for box in data["boxes"]:
                    peer = members.get(box["to"])
                    if peer is not None:
                        await sio.emit("box", {
                            "conversation": conv, "from": sender, "to": box["to"],
                            "epoch": data["epoch"], "seq": data["seq"],
                            "nonce": box["nonce"], "ct": box["ct"]},
                            to=peer[0], namespace=peer[1])
                return {"ok": True, "seq": data["seq"]}

            @sio.on("typing", namespace=ns)
            async def typing(sid: str, data: dict[str, Any]) -> dict[str, Any]:
                conv = data["conversation"]
                sender = mine.get(sid, {}).get(conv, "")
                for member in convs.get(conv, ()):
                    peer = members.get(member)
                    if member != sender and peer is not None:
                        await sio.emit("typing", {
                            "conversation": conv, "from": sender,
                            "active": data["active"]}, to=peer[0], namespace=peer[1])
                return {"ok": True}

            @sio.on("delivered", namespace=ns)
            async def delivered(sid: str, data: dict[str, Any]) -> dict[str, Any]:
                return {"ok": True}
        register()

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

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
