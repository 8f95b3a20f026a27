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

The client shares the 2 cores with the servers, and a busy minute on this shared machine halves any
figure, so the servers are measured in `ROUNDS` rounds, each server in turn once per round: the figures
are the medians of the rounds, and each ratio is the median of the ratios taken within a round (both
servers measured minutes apart would compare two machines). Each row also has the server's own CPU time
per delivery (from /proc, on Linux): what a delivery costs the server whatever the client's share of the
cores, compared with Node's in `server_cpu_ratios`.
Writes bench/results/webhooks.json. Run: .venv/bin/python bench/webhooks.py (about half a minute).
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
from contextlib import ExitStack, contextmanager
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
DELIVERIES = 1500  # per (target, concurrency, round)
ROUNDS = 5
# Deliveries each server gets before the first round: V8 compiles Node's hot functions only after many
# calls (its first 1,500 deliveries cost Node four times the CPU of later ones), and ghsync's caches
# (compiled statements, prepared PostgreSQL statements, opened connections) fill on first use.
WARMUP = 5000
SECRET = "bench webhook secret"
REPOSITORY_ID = 4242
INSTALLATION_ID = 77
PG = {"host": "127.0.0.1", "port": 5432}
NODE_CACHE = Path.home() / ".cache" / "ghsync-bench" / "node"
NODE_PACKAGE = "@octokit/webhooks@14"
NODE = "node @octokit/webhooks"
GHSYNC = ("ghsync sqlite", "ghsync postgresql")

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


def describe(row: dict[str, Any]) -> str:
    return (
        f"{row['target']:22} c={row['concurrency']:<3} {row['per_second']:>8}/s  p50 {row['p50_ms']:>7} ms  "
        f"p99 {row['p99_ms']:>7} ms  server CPU {row['server_cpu_us_per_delivery']} us/delivery"
    )


def measure(label: str, url: str, body: bytes, signature: str, pid: int) -> list[dict[str, Any]]:
    """One round's figures of one server, each concurrency in turn, with the server's own CPU time per
    delivery: the cost of a delivery whatever the load client's share of the cores."""
    rows = []
    for concurrency in CONCURRENCY:
        before = cpu_seconds(pid)
        row = {"target": label, **asyncio.run(load(url, body, signature, DELIVERIES, concurrency))}
        after = cpu_seconds(pid)
        cpu = None if before is None or after is None else round((after - before) / DELIVERIES * 1e6)
        row["server_cpu_us_per_delivery"] = cpu
        print(describe(row), row["statuses"])
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


def start_servers(stack: ExitStack, tmp: Path, skipped: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Every server the run measures, started and warmed up: label -> (delivery URL, process id)."""
    python = sys.executable
    ghsync = str(Path(python).with_name("ghsync"))
    servers: dict[str, tuple[str, int]] = {}
    # The references: a bare Starlette verify-and-ack, and Node's @octokit/webhooks.
    (tmp / "starlette_ref.py").write_text(STARLETTE_APP)
    port = free_port()
    uvicorn_cmd = [python, "-m", "uvicorn", "starlette_ref:app", "--port", str(port)]
    uvicorn_cmd += ["--log-level", "warning", "--no-access-log"]
    pid = stack.enter_context(server(uvicorn_cmd, {"BENCH_SECRET": SECRET}, port, tmp))
    servers["starlette reference"] = (f"http://127.0.0.1:{port}/hook", pid)
    why = node_ready()
    if why is None:
        port = free_port()
        env = {"BENCH_SECRET": SECRET, "BENCH_PORT": str(port)}
        pid = stack.enter_context(server(["node", "server.mjs"], env, port, NODE_CACHE))
        servers[NODE] = (f"http://127.0.0.1:{port}/hook", pid)
    else:
        skipped[NODE] = why
    pg_url = stack.enter_context(postgres_database())
    for label, url in (("ghsync sqlite", f"sqlite:///{tmp / 'ghsync.db'}"), ("ghsync postgresql", pg_url)):
        if url is None:
            skipped[label] = "PostgreSQL is not reachable on 127.0.0.1:5432"
            continue
        data_dir = tmp / label.replace(" ", "-")
        prepare_ghsync(url, data_dir)
        port = free_port()
        cmd = [ghsync, "serve", "--no-worker", "--port", str(port), "--log-level", "warning"]
        pid = stack.enter_context(server(cmd, ghsync_env(url, data_dir), port))
        servers[label] = (f"http://127.0.0.1:{port}/v1/webhooks/github", pid)
    return servers


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's figures at one concurrency: the median of its rounds."""
    cpus = [r["server_cpu_us_per_delivery"] for r in rows if r["server_cpu_us_per_delivery"] is not None]
    return {
        "target": rows[0]["target"],
        "concurrency": rows[0]["concurrency"],
        "rounds": len(rows),
        "per_second": round(statistics.median(r["per_second"] for r in rows), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rows), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in rows), 2),
        "server_cpu_us_per_delivery": round(statistics.median(cpus)) if cpus else None,
    }


def paired_ratio(
    by_round: list[dict[tuple[str, int], dict[str, Any]]], key: str, mine: str, theirs: str, concurrency: int
) -> float | None:
    """The median over the rounds of `mine`'s `key` over `theirs`, each ratio taken within one round."""
    ratios = []
    for rows in by_round:
        ours, reference = rows.get((mine, concurrency)), rows.get((theirs, concurrency))
        if ours and reference and ours[key] is not None and reference[key]:
            ratios.append(ours[key] / reference[key])
    return round(statistics.median(ratios), 2) if ratios else None


def main() -> None:
    body = push_payload()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    by_round: list[dict[tuple[str, int], dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp_dir, ExitStack() as stack:
        servers = start_servers(stack, Path(tmp_dir), skipped)
        for url, _ in servers.values():
            asyncio.run(load(url, body, signature, WARMUP, 16))
        # Every server in turn, once per round: a busy minute on this shared machine lands on one round
        # of every target, not on one target, and each ratio is taken between rows of the same round.
        for number in range(1, ROUNDS + 1):
            print(f"round {number} of {ROUNDS}")
            rows = [
                row
                for label, (url, pid) in servers.items()
                for row in measure(label, url, body, signature, pid)
            ]
            by_round.append({(r["target"], r["concurrency"]): r for r in rows})
    total = time.perf_counter() - started
    medians = [median_row([rows[key] for rows in by_round]) for key in by_round[0]]
    ratios: dict[str, float] = {}
    cpu_ratios: dict[str, float] = {}
    for reference in (NODE, "starlette reference"):
        for label in GHSYNC:
            for c in CONCURRENCY:
                ratio = paired_ratio(by_round, "per_second", label, reference, c)
                if ratio is not None:
                    ratios[f"{label} / {reference}, c={c}"] = ratio
    for label in GHSYNC:
        # Server CPU per delivery against Node's, at concurrency 64: what one delivery costs each server.
        ratio = paired_ratio(by_round, "server_cpu_us_per_delivery", label, NODE, 64)
        if ratio is not None:
            cpu_ratios[f"{label} / {NODE}, c=64"] = ratio
    by = {(r["target"], r["concurrency"]): r for r in medians}
    goal = {
        label: {
            "p99_ms_c64": by[(label, 64)]["p99_ms"],
            "p99_under_20ms": by[(label, 64)]["p99_ms"] < 20,
            "at_or_above_node": (
                ratios[f"{label} / {NODE}, c=64"] >= 1 if f"{label} / {NODE}, c=64" in ratios else None
            ),
        }
        for label in GHSYNC
        if (label, 64) in by
    }
    print("medians of the rounds:")
    for row in medians:
        print(describe(row))
    write_results(
        RESULTS,
        total,
        payload_bytes=len(body),
        rounds=ROUNDS,
        throughput_ratios=ratios,
        server_cpu_ratios=cpu_ratios,
        goal=goal,
        skipped=skipped,
        medians=medians,
        rows=[{"round": n, **row} for n, rows in enumerate(by_round, 1) for row in rows.values()],
    )
    summary = {"ratios": ratios, "cpu_ratios": cpu_ratios, "goal": goal, "skipped": skipped}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
