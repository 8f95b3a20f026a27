"""Shared fixtures: databases (SQLite always, PostgreSQL and Redis when reachable).

Tests that need PostgreSQL or Redis skip with a reason when the server is not reachable, except
under CI=true, where they fail: CI must prove them for real.

The suite runs on pytest-xdist workers (`-n auto` in pyproject.toml), so nothing here is shared between
tests: each PostgreSQL test gets a database of its own, each worker a Redis database of its own, and
what a worker finds (the secret scan below) is reported by the controller.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.entrypoints.api import app as api_app
from ghsync.entrypoints.api import webhooks as api_webhooks
from ghsync.observability.logging import known_secrets

PG_HOST = os.environ.get("GHSYNC_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("GHSYNC_TEST_PG_PORT", "5432"))
REDIS_HOST = os.environ.get("GHSYNC_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("GHSYNC_TEST_REDIS_PORT", "6379"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Property-based tests (the convergence models, the webhook fuzz) explore new examples on every local run;
# under CI=true they run a fixed, derandomized set, so a submission's CI answers the same way twice.
# A failure found locally prints its example to reproduce it.
hypothesis_settings.register_profile("ci", derandomize=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); start it to run these tests"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def _pg_admin_conninfo() -> str | None:
    last: Exception | None = None
    for user in ("postgres", "root"):
        conninfo = f"host={PG_HOST} port={PG_PORT} user={user} dbname=postgres connect_timeout=3"
        try:
            with psycopg.connect(conninfo, autocommit=True):
                return conninfo
        except psycopg.Error as exc:
            last = exc
    _unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT}", last or RuntimeError("no user worked"))
    return None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    conninfo = _pg_admin_conninfo()
    assert conninfo is not None
    name = f"ghsync_test_{uuid.uuid4().hex[:12]}"
    user = dict(part.split("=", 1) for part in conninfo.split())["user"]
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ghsync.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database ghsync supports, empty (not migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ghsync.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on each supported database."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated engine on SQLite only, for tests whose subject is not the database."""
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


# Redis databases 8-15 are reserved for tests: xdist worker gwN uses 15 - N, so one worker's flush never
# empties a database another worker's test is using.
REDIS_TEST_DBS = range(15, 7, -1)


def _redis_test_db() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # unset without xdist (or with -n 0)
    index = int(worker.removeprefix("gw"))
    if index >= len(REDIS_TEST_DBS):
        pytest.fail(f"{worker}: Redis tests run on at most {len(REDIS_TEST_DBS)} xdist workers (dbs 8-15)")
    return REDIS_TEST_DBS[index]


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database for one test, flushed before and after (this worker's own: see REDIS_TEST_DBS)."""
    import redis

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{_redis_test_db()}"
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {REDIS_HOST}:{REDIS_PORT}", exc)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- secrets never in logs ---------------------------------------------------------------------------
# Every test's captured output (log lines, stdout, stderr) and every error answer the API makes is
# searched for the secrets ghsync handled so far (observability/logging.py remembers each one: API tokens,
# encryption keys, webhook secrets, the App private key, each App JWT and installation token), raw or
# base64. One hit fails the whole run, naming the test and where it appeared (never the secret).

SECRET_LEAKS: list[str] = []


def scan_for_secrets(where: str, text: str) -> None:
    if not text:
        return
    for secret in known_secrets():
        if secret in text:
            SECRET_LEAKS.append(f"{where}: a secret ({len(secret)} characters) appears in it")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    for name, text in report.sections:
        scan_for_secrets(f"{item.nodeid} ({name})", text)


@pytest.fixture(scope="session", autouse=True)
def secrets_never_in_error_answers() -> Iterator[None]:
    """Every error answer of the API (both of its error builders) is scanned too."""
    patch = pytest.MonkeyPatch()
    error_response, webhook_error = api_app.error_response, api_webhooks._error

    def scanned_error_response(status: int, code: str, message: str, **extra: object) -> Any:
        scan_for_secrets(f"an error answer ({status} {code})", f"{message} {extra}")
        return error_response(status, code, message, **extra)

    def scanned_webhook_error(status: int, code: str, message: str, retry_after: int | None = None) -> Any:
        scan_for_secrets(f"a webhook error answer ({status} {code})", message)
        return webhook_error(status, code, message, retry_after)

    patch.setattr(api_app, "error_response", scanned_error_response)
    patch.setattr(api_webhooks, "_error", scanned_webhook_error)
    yield
    patch.undo()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # An xdist worker: its exit status and terminal are not the run's, so the controller (below) gets
        # the leaks, fails the run and prints them.
        workeroutput["secret_leaks"] = list(SECRET_LEAKS)
        return
    if SECRET_LEAKS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent with -p no:xdist
def pytest_testnodedown(node: Any, error: object) -> None:
    SECRET_LEAKS.extend(getattr(node, "workeroutput", {}).get("secret_leaks", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SECRET_LEAKS:
        terminalreporter.section("secrets in the output", sep="=", red=True, bold=True)
        for leak in dict.fromkeys(SECRET_LEAKS):
            terminalreporter.line(leak, red=True)
