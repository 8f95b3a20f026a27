"""Benchmark (not a test): GitHub API requests and latency per client operation, against the emulator.

Prints a table and writes bench/results/github_client.json. Cold = first call (includes the
installation-token request where one is needed); warm = the same call again (ETag reads become 304s,
which GitHub does not charge). Run: .venv/bin/python bench/bench_github_client.py
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig
from github_emulator.testing import run_emulator

RESULTS = Path(__file__).parent / "results" / "github_client.json"


def main() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, run_emulator(Path(tmp)) as emu:
        app = emu.create_app("bench")
        emu.create_repo("octo", "demo", default_branch="trunk", files={"README.md": "hi\n"})
        inst = emu.create_installation(app.id, "octo", ["octo/demo"])
        config = GitHubAppConfig(app_id=app.id, private_key=app.private_key, api_url=emu.url)
        with GitHubAppClient(config) as client:
            repo_id = emu.create_repo("octo", "other")["id"]
            emu.change_installation(inst, add=["octo/other"])
            ops: list[tuple[str, Callable[[], object]]] = [
                ("get_repository", lambda: client.get_repository(inst, "octo", "demo")),
                ("find_installation", lambda: client.find_installation("octo", "demo")),
                ("get_installation", lambda: client.get_installation(inst)),
                ("get_repository_by_id", lambda: client.get_repository_by_id(inst, repo_id)),
                ("get_branch_head", lambda: client.get_branch_head(inst, "octo", "demo", "trunk")),
                ("is_branch_protected", lambda: client.is_branch_protected(inst, "octo", "demo", "trunk")),
            ]
            for name, op in ops:
                for phase in ("cold", "warm"):
                    emu.clear_requests()
                    started = time.perf_counter()
                    op()
                    elapsed = time.perf_counter() - started
                    log = emu.requests()
                    rows.append(
                        {
                            "operation": name,
                            "phase": phase,
                            "requests": len(log),
                            "charged": sum(1 for r in log if r["status"] != 304),
                            "not_modified": sum(1 for r in log if r["status"] == 304),
                            "ms": round(elapsed * 1000, 2),
                        }
                    )
    print(f"{'operation':24} {'phase':5} {'requests':>8} {'charged':>8} {'304s':>5} {'ms':>8}")
    for r in rows:
        print(
            f"{r['operation']:24} {r['phase']:5} {r['requests']:>8} {r['charged']:>8} "
            f"{r['not_modified']:>5} {r['ms']:>8}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
