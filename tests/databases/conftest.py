"""Fixtures shared by the database tests: one PostgreSQL server for the session, and where a
test's store lives."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from tests.databases.builders import Place


@pytest.fixture(scope="session")
def server():
    """A PostgreSQL server with pgvector (pgserver, Unix socket), started on first use."""
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("sqlalchemy")
    # not under pytest's tmp dir: as root, pgserver runs postgres as another user, which
    # cannot enter pytest's private folders
    root = tempfile.mkdtemp(prefix="nudge-pg-")
    srv = pgserver.get_server(root, cleanup_mode="stop")
    try:
        srv.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        yield srv
    finally:
        srv.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def place(request, tmp_path):
    """``place(pair_name)``: a folder under the test's tmp dir, or for pgvector a table (or
    collection) named after the test on the session's server."""

    def make(name: str) -> Place:
        if name.startswith("pgvector"):
            table = f"{request.node.originalname}_{name.split('-')[-1]}".lower()
            return Place(uri=request.getfixturevalue("server").get_uri(), name=table)
        return Place(dir=str(tmp_path / "db"))

    return make


def pytest_collection_modifyitems(config, items):
    """Start the crash tests' fork server as soon as they are selected: it imports every
    framework (seconds) while the tests before them run."""
    if any(item.module.__name__.endswith(".test_crash") for item in items
           if getattr(item, "module", None) is not None):
        from tests.databases.crash_child import start_server

        start_server()
