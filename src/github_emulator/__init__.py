"""A faithful, stateful stand-in for GitHub (REST API, GitHub Apps, git smart HTTP, webhooks).

Run it with ``python -m github_emulator --port P --data DIR`` or in-process from tests with
:func:`github_emulator.testing.run_emulator`. This package is never imported by ``ghsync``.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from github_emulator.app import create_app
    from github_emulator.config import EmulatorConfig

__all__ = ["EmulatorConfig", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): every git push runs the pre-receive hook, a fresh interpreter importing
    # github_emulator.filesizes and .protection; importing the app (FastAPI) here cost ~1 s per push.
    if name == "create_app":
        from github_emulator.app import create_app

        return create_app
    if name == "EmulatorConfig":
        from github_emulator.config import EmulatorConfig

        return EmulatorConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
