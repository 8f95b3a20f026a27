"""How every bench records its figures: bench/results/<name>.json, with the machine they came from."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def write_results(path: Path, total_s: float, **figures: Any) -> None:
    """Write `figures` to `path` as JSON beside the machine's cores and Python and the run's length."""
    document = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "total_s": round(total_s, 1),
        **figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {path} in {total_s:.1f} s")
