"""Command line: ``python -m github_emulator --port P --data DIR [--host 127.0.0.1]``.

Prints exactly one line, the base URL, once it accepts connections, then serves until
SIGTERM/SIGINT. State persists in DIR across restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from github_emulator.app import create_app
from github_emulator.config import EmulatorConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="github_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data", type=Path, required=True, help="state directory")
    parser.add_argument("--token-ttl", type=int, default=3600, help="installation token lifetime (s)")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="requests/hour per installation and user (default: GitHub's rule, 5,000 plus 50 per "
        "repository above 20 for an installation, at most 12,500)",
    )
    parser.add_argument("--tree-entry-limit", type=int, default=100_000)
    return parser.parse_args(argv)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after shutting down (exit status -15); we exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _stop(self) -> None:
        self.should_exit = True


async def _serve(server: uvicorn.Server, host: str) -> None:
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"http://{host}:{port}", flush=True)
    await task


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    config = EmulatorConfig(
        data_dir=args.data,
        token_ttl_seconds=args.token_ttl,
        rate_limit=args.rate_limit,
        tree_entry_limit=args.tree_entry_limit,
    )
    app = create_app(config)
    server = _Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    )
    asyncio.run(_serve(server, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
