"""A faithful, stateful stand-in for GitHub (REST API, GitHub Apps, git smart HTTP, webhooks).

Run it with ``python -m github_emulator --port P --data DIR`` or in-process from tests with
:func:`github_emulator.testing.run_emulator`. This package is never imported by ``ghsync``.
"""

from github_emulator.app import create_app
from github_emulator.config import EmulatorConfig

__all__ = ["EmulatorConfig", "create_app"]
