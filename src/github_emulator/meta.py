"""``GET /meta``: where GitHub's traffic comes from, so receivers can allow-list webhook senders.

GitHub documents ``hooks`` as "the IP addresses that GitHub uses to send webhooks", in CIDR form
(https://docs.github.com/en/rest/meta/meta#get-github-meta-information and
https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks). The
emulator sends webhooks (and serves web, API and git) from this machine, so its defaults are
loopback; ``EmulatorConfig.meta_hooks`` changes ``hooks`` for a test of a receiver's allow-list.
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from github_emulator.core import Emulator
from github_emulator.deps import emulator, json_response
from github_emulator.payloads import JSON

router = APIRouter()

LOOPBACK = ["127.0.0.1/32", "::1/128"]


def meta_body(hooks: list[str]) -> JSON:
    """The ``api-overview`` schema; services the emulator does not run list no addresses."""
    for cidr in hooks:
        ipaddress.ip_network(cidr)  # a bad configuration fails here, not in a receiver
    return {
        "verifiable_password_authentication": False,
        "ssh_key_fingerprints": {},  # no SSH (git is served over HTTP only)
        "ssh_keys": [],
        "hooks": list(hooks),
        "web": list(LOOPBACK),
        "api": list(LOOPBACK),
        "git": list(LOOPBACK),
        "github_enterprise_importer": [],
        "packages": [],
        "pages": [],
        "importer": [],
        "actions": [],
        "actions_macos": [],
        "codespaces": [],
        "dependabot": [],
        "copilot": [],
        "commit_signing_keys": [],  # the emulator signs no commits
        "domains": {"website": [], "codespaces": [], "copilot": [], "packages": [], "actions": []},
    }


@router.get("/meta")
def get_meta(emu: Emulator = Depends(emulator)) -> Response:
    return json_response(meta_body(list(emu.config.meta_hooks)))
