"""Fixtures: a real SMTP sink as next hop, and a gateway process in front of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import GatewayProcess, Sink, create_pg_database, drop_pg_database, write_settings


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def make(next_hop_port: int, **overrides: Any) -> GatewayProcess:
        config, port = write_settings(tmp_path, next_hop_port, **overrides)
        gateway = GatewayProcess(config, port, tmp_path)
        started.append(gateway)
        return gateway.start()

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL, on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)
