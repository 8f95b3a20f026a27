"""The local version store (pygit2): per-project repositories holding the project's versions."""

from ghsync.adapters.store.git_store import GitStore

__all__ = ["GitStore"]
