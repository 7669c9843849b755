"""A connection pool that finds the Redis primary through Sentinel and, as
the pool of a node on one Redis address does, waits for a free connection
instead of raising past its size (redis-py's SentinelConnectionPool raises:
a burst of calls would then fail instead of queueing)."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool

# How often the pool asks the Sentinels where the primary is, beside asking
# for every new connection. A primary moved on purpose (SENTINEL FAILOVER)
# keeps answering until the Sentinels demote it, up to ~10 s later: without
# asking, connections that never fail would go on writing to it.
CHECK_SECS = 1.0


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """SentinelConnectionPool's discovery (the primary's address asked of the
    Sentinels for every new connection) over BlockingConnectionPool's
    waiting ``get_connection``; at most every CHECK_SECS it asks again, and
    a connection to an address that is no longer the primary's is closed
    instead of reused."""

    _checked_at = 0.0

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        now = time.monotonic()
        if now - self._checked_at >= CHECK_SECS:
            self._checked_at = now
            # A new address closes the idle connections (redis-py); no
            # primary known raises MasterNotFoundError, a ConnectionError.
            await self.get_master_address()  # type: ignore[no-untyped-call]
        connection: AbstractConnection = await super().get_connection(  # type: ignore[no-untyped-call]
            *args, **kwargs)
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        address = (getattr(connection, "host", None), getattr(connection, "port", None))
        if self.master_address is not None and address != tuple(self.master_address):
            await connection.disconnect()  # it was busy when the primary moved
        await super().release(connection)
