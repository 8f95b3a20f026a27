"""Benchmark (not a test): webhook deliveries per second and acknowledgement latency (p50, p99) at
concurrency 16 and 64, for ghsync's App endpoint with durable dedup on SQLite and on PostgreSQL, beside
two references measured in the same run:

- a bare Starlette endpoint that verifies `X-Hub-Signature-256` and answers 202 (no dedup, no database);
- the Node `@octokit/webhooks` middleware (`createNodeMiddleware`, verify and ack), when `node` and `npm`
  are available (installed with npm into ~/.cache/ghsync-bench/node on first use).

Every server runs as its own process (uvicorn, one worker; ghsync is `ghsync serve --no-worker`, so the
reconcile requests it writes wait in the outbox). The load comes from this process: `concurrency`
kept-alive connections (a small asyncio HTTP/1.1 client), each sending its deliveries back to back, each
a signed `push` delivery (about 6 KB, a distinct `X-GitHub-Delivery` GUID) to the default branch of a
linked project, so ghsync does its whole request path: verify, dedup (one row per delivery), the outbox
row of the reconcile request, one commit, 202.
The goal (issue 10): at or above the Node reference, with p99 under 20 ms at concurrency 64.

The client shares the 2 cores with the server, so the figures are comparable within a run, not absolute.
Each row also has the server's own CPU time per delivery (from /proc, on Linux): what a delivery costs
the server whatever the client's share of the cores, compared with Node's in `server_cpu_ratios`.
Writes bench/results/webhooks.json. Run: .venv/bin/python bench/webhooks.py (about two minutes).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _results import write_results

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.link import Link, Tracking
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.services.projects import ProjectService

RESULTS = Path(__file__).parent / "results" / "webhooks.json"
CONCURRENCY = (16, 64)
DELIVERIES = 1500  # per (target, concurrency)
WARMUP = 100
SECRET = "bench webhook secret"
REPOSITORY_ID = 4242
INSTALLATION_ID = 77
PG = {"host": "127.0.0.1", "port": 5432}
NODE_CACHE = Path.home() / ".cache" / "ghsync-bench" / "node"
NODE_PACKAGE = "@octokit/webhooks@14"

STARLETTE_APP = """
import hashlib, hmac, os
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

SECRET = os.environ["BENCH_SECRET"].encode()

async def hook(request):
    body = await request.body()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("x-hub-signature-256", ""), expected):
        return Response(status_code=401)
    return Response(status_code=202)

app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
"""

NODE_APP = """
import http from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";
const webhooks = new Webhooks({ secret: process.env.BENCH_SECRET });
webhooks.on("push", () => {});
const middleware = createNodeMiddleware(webhooks, { path: "/hook" });
http.createServer(middleware).listen(Number(process.env.BENCH_PORT), "127.0.0.1");
"""


def push_payload() -> bytes:
    commits = [
        {
            "id": f"{i:040x}",
            "tree_id": f"{i + 1:040x}",
            "distinct": True,
            "message": f"A person's change number {i}",
            "timestamp": "2026-12-01T09:00:00Z",
            "url": f"https://github.com/octo/site/commit/{i:040x}",
            "author": {"name": "Grace", "email": "grace@example.com", "username": "grace"},
            "committer": {"name": "Grace", "email": "grace@example.com", "username": "grace"},
            "added": [f"src/file{i}.txt"],
            "removed": [],
            "modified": ["README.md"],
        }
        for i in range(12)
    ]
    payload = {
        "ref": "refs/heads/main",
        "before": "a" * 40,
        "after": "b" * 40,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": "https://github.com/octo/site/compare/a...b",
        "commits": commits,
        "head_commit": commits[-1],
        "repository": {
            "id": REPOSITORY_ID,
            "name": "site",
            "full_name": "octo/site",
            "private": False,
            "owner": {"login": "octo", "id": 1, "type": "User"},
            "default_branch": "main",
            "html_url": "https://github.com/octo/site",
        },
        "pusher": {"name": "grace", "email": "grace@example.com"},
        "sender": {"login": "grace", "id": 2, "type": "User"},
        "installation": {"id": INSTALLATION_ID, "node_id": "MDIz"},
    }
    return json.dumps(payload).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user + system) process `pid` has used, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int, cwd: Path | None = None) -> Iterator[int]:
    """Run a server until the block ends; yields its process id."""
    process = subprocess.Popen(
        cmd, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare_ghsync(database_url: str, data_dir: Path) -> None:
    """A migrated database with one project (and its local store) linked to the deliveries' repository."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    uow = SqlUnitOfWorkFactory(engine)
    store = GitStore(data_dir / "projects", max_file_size=100 * 1024 * 1024)
    pid = ProjectService(uow, store).create_project("site").id
    with uow() as tx:
        link = Link(pid, "octo", "site", REPOSITORY_ID, INSTALLATION_ID, "main", False,
                    SyncMode.DIRECT_COMMIT, ConflictStrategy.MANUAL, True)  # fmt: skip
        tx.projects.link(pid, link, webhook_secret="", tracking=Tracking(last_remote_main_sha="a" * 40))
        tx.commit()
    engine.dispose()


def ghsync_env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "GHSYNC_DATA_DIR": str(data_dir),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GHSYNC_WEBHOOK_RATE_LIMIT": "0",  # the per-source limit would refuse a load test from one address
        "GHSYNC_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "GITHUB_SYNC_POLLING_ENABLED": "false",
    }


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, dict[str, str]]:
    """One HTTP/1.1 request on a kept-alive connection: (status, headers), the body read and dropped."""
    writer.write(raw)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers


async def load(url: str, body: bytes, signature: str, n: int, concurrency: int) -> dict[str, Any]:
    """`concurrency` connections, each sending its share of `n` deliveries back to back (closed loop).

    A raw asyncio HTTP/1.1 client rather than httpx: on 2 shared cores httpx's own overhead capped every
    server at the same rate, and the figures are about the servers."""
    parsed = httpx.URL(url)
    host, port, path = parsed.host, parsed.port or 80, parsed.raw_path.decode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-GitHub-Event: push\r\nX-GitHub-Hook-ID: 1\r\n"
        f"X-Hub-Signature-256: {signature}\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
    )

    async def connection(count: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for _ in range(count):
                raw = (head + f"X-GitHub-Delivery: {uuid.uuid4()}\r\n\r\n").encode() + body
                started = time.perf_counter()
                status, headers = await _request(reader, writer, raw)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    shares = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(connection(k) for k in shares if k))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "deliveries": n,
        "concurrency": concurrency,
        "per_second": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def measure(label: str, url: str, body: bytes, signature: str, pid: int) -> list[dict[str, Any]]:
    """Each concurrency's figures, with the server's own CPU time per delivery: the cost of a delivery
    whatever the load client's share of the cores."""
    asyncio.run(load(url, body, signature, WARMUP, 8))
    rows = []
    for concurrency in CONCURRENCY:
        before = cpu_seconds(pid)
        row = {"target": label, **asyncio.run(load(url, body, signature, DELIVERIES, concurrency))}
        after = cpu_seconds(pid)
        cpu = None if before is None or after is None else round((after - before) / DELIVERIES * 1e6)
        row["server_cpu_us_per_delivery"] = cpu
        print(f"{label:22} c={concurrency:<3} {row['per_second']:>8}/s  p50 {row['p50_ms']:>7} ms  "
              f"p99 {row['p99_ms']:>7} ms  server CPU {cpu} us/delivery  {row['statuses']}")  # fmt: skip
        rows.append(row)
    return rows


@contextmanager
def postgres_database() -> Iterator[str | None]:
    try:
        import psycopg
    except ImportError:
        yield None
        return
    name = f"ghsync_bench_{os.getpid()}"
    try:
        admin = psycopg.connect(
            f"host={PG['host']} port={PG['port']} user=postgres dbname=postgres", autocommit=True
        )
    except psycopg.Error:
        yield None
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@{PG['host']}:{PG['port']}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


Measured = TypeVar("Measured")


def on_each_database(measure: Callable[[str, Path], Measured]) -> dict[str, Measured | str]:
    """`measure(database_url, data_dir)` on a fresh SQLite file and on a fresh PostgreSQL database, by
    name; a database that cannot be reached gets the reason it was skipped instead."""
    results: dict[str, Measured | str] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        results["sqlite"] = measure(f"sqlite:///{tmp / 'ghsync.db'}", tmp / "sqlite")
        with postgres_database() as pg_url:
            if pg_url is None:
                results["postgresql"] = "skipped: PostgreSQL is not reachable on 127.0.0.1:5432"
            else:
                results["postgresql"] = measure(pg_url, tmp / "postgresql")
    return results


def node_ready() -> str | None:
    """Why the Node reference cannot run, or None when it can (installing the package once)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node or npm is not installed"
    if not (NODE_CACHE / "node_modules" / "@octokit" / "webhooks").is_dir():
        NODE_CACHE.mkdir(parents=True, exist_ok=True)
        (NODE_CACHE / "package.json").write_text(
            '{"name": "ghsync-bench", "private": true, "type": "module"}\n'
        )
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", NODE_PACKAGE],
            cwd=NODE_CACHE, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            return f"npm install {NODE_PACKAGE} failed: {done.stderr.strip()[-300:]}"
    (NODE_CACHE / "server.mjs").write_text(NODE_APP)
    return None


def main() -> None:
    body = push_payload()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    python = sys.executable
    ghsync = str(Path(python).with_name("ghsync"))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        # The references first: a bare Starlette verify-and-ack, and Node's @octokit/webhooks.
        (tmp / "starlette_ref.py").write_text(STARLETTE_APP)
        port = free_port()
        uvicorn_cmd = [python, "-m", "uvicorn", "starlette_ref:app", "--port", str(port)]
        with server(
            [*uvicorn_cmd, "--log-level", "warning", "--no-access-log"], {"BENCH_SECRET": SECRET}, port, tmp
        ) as pid:
            rows += measure("starlette reference", f"http://127.0.0.1:{port}/hook", body, signature, pid)
        why = node_ready()
        if why is None:
            port = free_port()
            env = {"BENCH_SECRET": SECRET, "BENCH_PORT": str(port)}
            with server(["node", "server.mjs"], env, port, NODE_CACHE) as pid:
                rows += measure(
                    "node @octokit/webhooks", f"http://127.0.0.1:{port}/hook", body, signature, pid
                )
        else:
            skipped["node @octokit/webhooks"] = why
        targets: list[tuple[str, str | None]] = [("ghsync sqlite", f"sqlite:///{tmp / 'ghsync.db'}")]
        with postgres_database() as pg_url:
            targets.append(("ghsync postgresql", pg_url))
            for label, url in targets:
                if url is None:
                    skipped[label] = "PostgreSQL is not reachable on 127.0.0.1:5432"
                    continue
                data_dir = tmp / label.replace(" ", "-")
                prepare_ghsync(url, data_dir)
                port = free_port()
                cmd = [ghsync, "serve", "--no-worker", "--port", str(port), "--log-level", "warning"]
                with server(cmd, ghsync_env(url, data_dir), port) as pid:
                    hook = f"http://127.0.0.1:{port}/v1/webhooks/github"
                    rows += measure(label, hook, body, signature, pid)
    total = time.perf_counter() - started
    by = {(r["target"], r["concurrency"]): r for r in rows}
    ratios: dict[str, float] = {}
    for reference in ("node @octokit/webhooks", "starlette reference"):
        for label in ("ghsync sqlite", "ghsync postgresql"):
            for c in CONCURRENCY:
                if (reference, c) in by and (label, c) in by:
                    ratios[f"{label} / {reference}, c={c}"] = round(
                        by[(label, c)]["per_second"] / by[(reference, c)]["per_second"], 2
                    )
    # Server CPU per delivery against Node's, at concurrency 64: what one delivery costs each server.
    cpu_ratios: dict[str, float] = {}
    node = by.get(("node @octokit/webhooks", 64), {}).get("server_cpu_us_per_delivery")
    for label in ("ghsync sqlite", "ghsync postgresql"):
        mine = by.get((label, 64), {}).get("server_cpu_us_per_delivery")
        if node and mine:
            cpu_ratios[f"{label} / node @octokit/webhooks, c=64"] = round(mine / node, 2)
    goal = {
        label: {
            "p99_ms_c64": by[(label, 64)]["p99_ms"],
            "p99_under_20ms": by[(label, 64)]["p99_ms"] < 20,
            "at_or_above_node": (
                by[(label, 64)]["per_second"] >= by[("node @octokit/webhooks", 64)]["per_second"]
                if ("node @octokit/webhooks", 64) in by
                else None
            ),
        }
        for label in ("ghsync sqlite", "ghsync postgresql")
        if (label, 64) in by
    }
    write_results(
        RESULTS,
        total,
        payload_bytes=len(body),
        throughput_ratios=ratios,
        server_cpu_ratios=cpu_ratios,
        goal=goal,
        skipped=skipped,
        rows=rows,
    )
    summary = {"ratios": ratios, "cpu_ratios": cpu_ratios, "goal": goal, "skipped": skipped}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
