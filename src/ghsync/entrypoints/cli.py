"""The `ghsync` command line: serve, worker, migrate, emulator, demo, and admin commands."""

from __future__ import annotations

import gc
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ghsync.config import Settings, load_settings
from ghsync.domain.errors import GhsyncError

if TYPE_CHECKING:  # the CLI imports the heavy wiring only for commands that need it
    from ghsync.bootstrap import Container

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
projects_app = typer.Typer(help="Manage projects.", no_args_is_help=True)
versions_app = typer.Typer(help="Inspect versions.", no_args_is_help=True)
admin_app = typer.Typer(help="Administration.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
app.add_typer(versions_app, name="versions")
app.add_typer(admin_app, name="admin")

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except GhsyncError as exc:
        _fail(exc.message)


def _container(settings: Settings, *, require_migrated: bool = True) -> Container:
    from ghsync.bootstrap import build_container

    try:
        return build_container(settings, require_migrated=require_migrated)
    except GhsyncError as exc:
        _fail(exc.message)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Run the embedded job worker too.")] = True,
    worker_threads: Annotated[int, typer.Option(min=1, help="Worker threads.")] = 2,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Serve the REST API with the embedded job worker (refuses an un-migrated database)."""
    import uvicorn

    from ghsync.entrypoints.api.app import create_app
    from ghsync.observability.logging import configure_logging

    settings = _settings()
    configure_logging(log_level)
    container = _container(settings)
    container.versions.reindex_all()  # versions committed just before a crash get their rows
    if worker:
        container.queue.start(threads=worker_threads)
    api = create_app(container)
    freeze_startup_heap()
    try:
        uvicorn.run(api, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        container.queue.stop()
        container.close()


# Allocations (less deallocations) between two collections of the youngest generation (Python: 700).
YOUNG_COLLECTION_EVERY = 10_000


def freeze_startup_heap() -> None:
    """Exempt what start-up built (modules, the app, its schemas, the ORM's mappers) from every later
    garbage collection, and collect the young generation less often.

    Start-up's objects live as long as the process; without the freeze, each full collection walks all
    of them again, and on the webhook path that cost more CPU than the delivery's own work
    (bench/webhooks.py). `gc.freeze` is Python's tool for exactly this:
    https://docs.python.org/3/library/gc.html#gc.freeze
    A request allocates a few hundred containers (a parsed payload alone is a hundred), so at Python's
    default of a young collection every 700 allocations, collections ran every few requests and each
    walked the objects of every request then in flight, moving them to older generations to be walked
    again. Every `YOUNG_COLLECTION_EVERY` allocations, nearly all of them are already freed (by reference
    counting) and are never walked: on the webhook bench, the time spent collecting fell from about
    0.7 s to 0.2 s per 30,000 deliveries. Reference cycles wait a little longer to be freed, nothing else
    changes. https://docs.python.org/3/library/gc.html#gc.set_threshold
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)


@app.command("worker")
def run_worker(
    threads: Annotated[int, typer.Option(min=1, help="Worker threads.")] = 2,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run only the job worker (for deployments that scale API and workers apart)."""
    import signal

    from ghsync.observability.logging import configure_logging

    settings = _settings()
    configure_logging(log_level)
    container = _container(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    freeze_startup_heap()
    container.queue.start(threads=threads)
    console.print(f"worker running with {threads} threads; Ctrl-C stops it", highlight=False)
    stop.wait()
    container.queue.stop()
    container.close()


@app.command()
def migrate() -> None:
    """Apply the database migrations (SQLite or PostgreSQL, per DATABASE_URL)."""
    from ghsync.adapters.db import migrate as migrations
    from ghsync.adapters.db.engine import make_engine

    settings = _settings()
    engine = make_engine(settings.effective_database_url)
    before = migrations.current_revision(engine)
    migrations.upgrade(engine)
    after = migrations.current_revision(engine)
    engine.dispose()
    console.print(f"database migrated: {before or 'empty'} -> {after}", highlight=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def emulator(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 9100,
    data: Annotated[Path, typer.Option(help="State directory (kept across restarts).")] = Path(
        "./emulator-data"
    ),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Run the built-in GitHub emulator (prints its base URL when ready).

    Further flags go to the emulator: --token-ttl, --rate-limit, --tree-entry-limit (see docs/emulator.md).
    """
    # A separate process image: ghsync never imports the emulator package.
    args = ["-m", "github_emulator", "--port", str(port), "--data", str(data), "--host", host, *ctx.args]
    os.execv(sys.executable, [sys.executable, *args])


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the temporary data directory.")] = False,
) -> None:
    """Run the service on a temporary data dir and narrate what it does, for real."""
    from ghsync.entrypoints.demo import run_demo

    raise typer.Exit(run_demo(console, keep=keep))


@projects_app.command("list")
def projects_list(limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """List projects, newest first."""
    container = _container(_settings())
    page = container.projects.list_projects(limit=limit)
    table = Table("id", "name", "created")
    for project in page.items:
        table.add_row(str(project.id), project.name, project.created_at.isoformat(timespec="seconds"))
    console.print(table)


@projects_app.command("create")
def projects_create(name: str) -> None:
    """Create a project and print its id."""
    container = _container(_settings())
    try:
        project = container.projects.create_project(name)
    except GhsyncError as exc:
        _fail(exc.message)
    console.print(str(project.id), highlight=False)


@versions_app.command("list")
def versions_list(project_id: str, limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """List a project's versions, newest first."""
    from ghsync.services.projects import parse_project_id

    container = _container(_settings())
    try:
        page = container.versions.list_versions(parse_project_id(project_id), limit=limit)
    except GhsyncError as exc:
        _fail(exc.message)
    table = Table("number", "id", "source", "commit", "message", "created")
    for version in page.items:
        table.add_row(
            str(version.number),
            str(version.id),
            version.source,
            version.commit_sha[:12],
            version.message.splitlines()[0],
            version.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@admin_app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt stored secrets under the first key of GHSYNC_ENCRYPTION_KEYS."""
    container = _container(_settings())
    try:
        rotated = container.links.rotate_secrets()
    except GhsyncError as exc:
        _fail(exc.message)
    console.print(f"re-encrypted {rotated} secret(s) under the primary key", highlight=False)


@admin_app.command("rebuild-pairs")
def rebuild_pairs(project_id: str) -> None:
    """Rebuild a project's base sync pair from history (after the database lost it)."""
    container = _container(_settings())
    if container.pairs is None:
        _fail("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY must be set to read the repository's history")
    try:
        pair = container.pairs.rebuild(project_id)
    except GhsyncError as exc:
        _fail(exc.message)
    if pair is None:
        _fail("no GitHub commit on the default branch pairs with a local version; see `sync/reset`")
    console.print(f"base pair: version {pair.version_id} = GitHub {pair.github_commit_sha}", highlight=False)


def main() -> None:
    app()
