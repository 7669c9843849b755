"""``python -m loadtests.chat_server``: chatserver exactly as ``chatserver
serve`` runs it (same ``create_app``, same settings loading), plus
``chatserver.gc_policy.install`` in the app's cleanup context. ``install`` is
idempotent, so this stays correct once the app installs the policy itself;
until then it lets the load runs measure the lever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from chatserver import gc_policy, logs
from chatserver.app import create_app
from chatserver.settings import load_settings
from loadtests import gcstats, stalls


def main() -> None:
    settings = load_settings()
    logs.configure(settings.log_level)
    app = create_app(settings)

    async def gc_ctx(_: web.Application) -> AsyncIterator[None]:
        task = gc_policy.install(settings)
        yield
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(gc_ctx)
    gcstats.install(app)
    stalls.install(app)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None,
                backlog=4096)


if __name__ == "__main__":
    main()
