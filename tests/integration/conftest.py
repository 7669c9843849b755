"""Fixtures of the cluster tests (test_cluster_*.py): a private Redis and a
fresh PostgreSQL database for each test, and three ``chatserver serve``
nodes on them behind the test load balancer (tests/helpers/cluster.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.helpers.cluster import Cluster, cluster
from tests.helpers.postgres import fresh_database
from tests.helpers.redis_server import RedisServer, redis_server


@pytest.fixture
def redis_primary() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


@pytest.fixture
async def three_nodes(tmp_path: Path, redis_primary: RedisServer,
                      database_url: str) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path / "cluster", redis_primary, database_url, nodes=3) as c:
        yield c
    # Shown with -s, or beside a failure: how long each clean stop took.
    print("node stops (s):", {n: [round(t, 1) for t in node.stop_secs]
                              for n, node in c.nodes.items()})
