"""What routes need from the application: the container the app was built with."""

from __future__ import annotations

from fastapi import Request

from ghsync.bootstrap import Container


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container
