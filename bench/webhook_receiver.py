"""Benchmark (not a test): the CPU one delivery costs the webhook receiver's request path in this process:
ghsync's ASGI app (`create_app`) called directly, without HTTP, with the batch step answered at once, so
what is measured is the receiver's own work (admit the source, read the capped body, verify the
signature, parse the headers and payload, answer 202, count the request): the part of
`bench/webhooks.py`'s figure that is neither the HTTP server nor the database.

Each delivery is the bench's signed push (`bench/webhooks.py`), `concurrency` of them in flight on one
event loop, to the App's hook and to a project's repository hook (whose secret is sealed in the
database). Then the largest push GitHub sends (2,048 commits, its cap: webhook-events-and-payloads#push):
the time `parse_payload` takes over it and the memory it holds at its peak (tracemalloc).

Writes bench/results/webhook_receiver.json. Run: .venv/bin/python bench/webhook_receiver.py (seconds).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from _results import write_results
from webhooks import REPOSITORY_ID, SECRET, prepare_ghsync, push_payload

from ghsync.adapters.secrets import SecretBox
from ghsync.bootstrap import build_container
from ghsync.config import load_settings
from ghsync.domain.webhooks import Reconcile, parse_payload
from ghsync.entrypoints.api.app import create_app
from ghsync.entrypoints.cli import freeze_startup_heap
from ghsync.observability.logging import configure_logging
from ghsync.services.linking import webhook_secret_context
from ghsync.services.webhooks import Delivery, ProjectOutcome, Receipt

RESULTS = Path(__file__).parent / "results" / "webhook_receiver.json"
CONCURRENCY = (1, 64)
DELIVERIES = 6400
WARMUP = 640
KEY = "k1:" + base64.b64encode(bytes(32)).decode()  # seals the repository hook's secret


class AnsweredAtOnce:
    """The batch step, answered at once: a delivery is `queued` for one project."""

    async def submit(self, delivery: Delivery) -> Receipt:
        outcome = ProjectOutcome("project", Reconcile("push to the default branch"), "request")
        return Receipt(delivery.headers.delivery_id, delivery.headers.event, "queued", (outcome,))


def run(app: Any, body: bytes, n: int, concurrency: int, path: str = "/v1/webhooks/github") -> None:
    signature = ("sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()).encode()
    fixed = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-github-event", b"push"),
        (b"x-github-hook-id", b"1"),
        (b"x-hub-signature-256", signature),
        (b"user-agent", b"GitHub-Hookshot/bench"),
    ]

    async def one() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8000), "state": {},
            "headers": [*fixed, (b"x-github-delivery", str(uuid.uuid4()).encode())],
        }  # fmt: skip
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 202, sent

    async def deliveries() -> None:
        async def sender(count: int) -> None:
            for _ in range(count):
                await one()

        await asyncio.gather(*(sender(n // concurrency) for _ in range(concurrency)))

    asyncio.run(deliveries())


def large_push() -> bytes:
    """A push of 2,048 commits (GitHub's cap), each adding 200 files: about 13 MB."""
    commits = [
        {
            "id": f"{i:040x}",
            "message": "A person's change " * 10,
            "author": {"name": "Grace", "email": "grace@example.com", "username": "grace"},
            "added": [f"src/dir{j}/file{i}-{j}.txt" for j in range(200)],
            "removed": [],
            "modified": ["README.md"],
        }
        for i in range(2048)
    ]
    payload = {"ref": "refs/heads/main", "after": "b" * 40, "commits": commits, "head_commit": commits[-1],
               "repository": {"id": 4242, "default_branch": "main"}, "installation": {"id": 77}}  # fmt: skip
    return json.dumps(payload).encode()


def measure_large_push() -> dict[str, Any]:
    body = large_push()
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        parse_payload(body)
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    parse_payload(body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    row = {
        "payload_bytes": len(body),
        "parse_ms": round(min(seconds) * 1000, 1),
        "peak_kb": round(peak / 1e3),
    }
    print(f"a push of 2,048 commits ({len(body) / 1e6:.1f} MB): parsed in {row['parse_ms']} ms, "
          f"{row['peak_kb']:,} kB held at the peak")  # fmt: skip
    return row


def main() -> None:
    configure_logging("warning")
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        url = f"sqlite:///{tmp / 'ghsync.db'}"
        prepare_ghsync(url, tmp / "data")
        settings = load_settings(
            {},
            database_url=url,
            ghsync_data_dir=tmp / "data",
            github_webhook_secret=SECRET,
            ghsync_encryption_keys=[KEY],
            ghsync_webhook_rate_limit=0,
            github_sync_polling_enabled=False,
        )
        container = build_container(settings)
        with container.uow() as uow:  # the project's repository hook, with the same secret, sealed
            [project] = uow.projects.by_repositories([REPOSITORY_ID])
            context = webhook_secret_context(project.id)
            uow.projects.set_webhook_secret(
                project.id, SecretBox.from_setting([KEY]).encrypt(SECRET, context=context)
            )
            uow.commit()
        app = create_app(container)
        app.state.webhook_batches = AnsweredAtOnce()
        body = push_payload()
        run(app, body, WARMUP, 8)
        freeze_startup_heap()  # as `ghsync serve` does after start-up
        hooks = {"app": "/v1/webhooks/github", "repository": f"/v1/webhooks/github/{project.id}"}
        for hook, path in hooks.items():
            for concurrency in CONCURRENCY:
                cpu = time.process_time()
                run(app, body, DELIVERIES, concurrency, path)
                cpu = time.process_time() - cpu
                row = {
                    "hook": hook,
                    "concurrency": concurrency,
                    "cpu_us_per_delivery": round(cpu / DELIVERIES * 1e6, 1),
                }
                cost = row["cpu_us_per_delivery"]
                print(f"{hook:10} hook, concurrency {concurrency:>3}: {cost:>6} us CPU per delivery")
                rows.append(row)
        container.close()
    largest = measure_large_push()
    total = time.perf_counter() - started
    write_results(
        RESULTS,
        total,
        payload_bytes=len(body),
        rows=rows,
        large_push=largest,
    )


if __name__ == "__main__":
    main()
