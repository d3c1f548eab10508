"""Real databases for the class board's tests: a SQLite file, and a real PostgreSQL server.

Import the fixtures into a test module (``from conftest_store import *``):

- ``postgres_server`` (session): a PostgreSQL server on loopback. ``MINILLM_TEST_DATABASE_URL``
  if set (a server someone runs, where the tests may create schemas). Otherwise a throwaway cluster made with Debian's binaries
  (``/usr/lib/postgresql/*/bin/initdb`` and ``pg_ctl``, the newest version found) in a temp
  folder, run as the ``postgres`` user when the tests run as root (initdb refuses root),
  listening on 127.0.0.1 at a free port with its socket in that folder, trust auth for
  loopback only, and stopped and deleted at the end of the session. Without PostgreSQL
  binaries or the psycopg driver the PostgreSQL tests are skipped with the reason, except
  under ``CI=true``, where that is a failure: CI installs Debian's postgresql (``.ci/run``).
- ``db_url`` (function, parametrized ``sqlite`` / ``postgresql``): the address of an empty
  database: a new SQLite file in ``tmp_path``, or a new schema on the server (first on the
  search_path of every connection made with that address).
- ``clock``: a `FakeClock` the store reads "now" from; ``clock.advance(seconds)``.

No mock database anywhere: every test talks to the real thing.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

PG_START_SECONDS = 60


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path | None:
    """The bin folder of the newest Debian PostgreSQL installed, or None."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = Path(initdb).parents[1].name
        try:
            found.append((float(version), Path(initdb).parent))
        except ValueError:
            continue
    return max(found)[1] if found else None


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create databases on."""

    admin_url: str  # the database the tests make their schemas in
    owned: bool  # started by these tests (so they may also crash and restart it)
    bindir: Path | None = None
    datadir: Path | None = None
    port: int = 0
    user: str | None = None  # run the binaries as this user (None: as ourselves)
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _run(self, *args: str, check: bool = True, timeout: float = PG_START_SECONDS):
        kwargs = {}
        if self.user:
            entry = pwd.getpwnam(self.user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]], check=check, capture_output=True,
            text=True, timeout=timeout, cwd=str(self.datadir.parent), **kwargs,
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.datadir.parent} -c max_connections=100 "
            "-c shared_buffers=32MB"
        )
        log = self.datadir.parent / "postgres.log"
        result = self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(log), "-o", options, "-w",
            "-t", str(PG_START_SECONDS), "start", check=False, timeout=PG_START_SECONDS + 10,
        )
        if result.returncode != 0:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {result.stdout}{result.stderr}\n{text}")

    def stop(self, mode: str = "fast") -> None:
        """``mode="immediate"``: the server dies without a checkpoint, like a crash."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def fresh_database(self) -> str:
        """The address of a new, empty place for the board on this server: a schema of its
        own, first on the connection's search_path (far quicker than a CREATE DATABASE per test)."""
        import sqlalchemy as sa

        name = f"minillm_test_{os.getpid()}_{next(self._names)}"
        engine = sa.create_engine(self.admin_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        engine.dispose()
        url = sa.make_url(self.admin_url).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)


def _own_server() -> PostgresServer:
    bindir = postgres_bindir()
    if bindir is None:
        _skip_or_fail(
            "no PostgreSQL binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        )
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _skip_or_fail("running as root and there is no postgres user to run initdb as")
        user = "postgres"
    top = Path(tempfile.mkdtemp(prefix="minillm-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(top, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(
        admin_url="", owned=True, bindir=bindir, datadir=top / "data", port=_free_port(),
        user=user,
    )
    result = server._run(
        "initdb", "-D", str(server.datadir), "-U", "postgres", "--auth=trust",
        "-E", "UTF8", "--locale=C", "--no-sync", check=False, timeout=120,
    )
    if result.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")
    server.start()
    server.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"
    return server


@pytest.fixture(scope="session")
def postgres_server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _skip_or_fail("the psycopg driver is not installed (pip install -r requirements.txt)")
    given = os.environ.get("MINILLM_TEST_DATABASE_URL", "").strip()
    if given:
        from minillm.store.board import _normalize_url

        url = _normalize_url(given).render_as_string(hide_password=False)
        yield PostgresServer(admin_url=url, owned=False)
        return
    server = _own_server()
    try:
        yield server
    finally:
        server.stop("immediate")  # a throwaway cluster: no need to checkpoint it
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'board.sqlite'}"
    return request.getfixturevalue("postgres_server").fresh_database()


@pytest.fixture
def clock():
    return FakeClock()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
