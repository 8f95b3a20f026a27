#!/usr/bin/env python3
"""Fetch GitHub's official REST and webhook descriptions and write trimmed copies for the tests.

Sources (both MIT-licensed, fetched from the npm registry with ``npm pack`` into a temp dir):

* ``@octokit/openapi`` -> ``generated/api.github.com.json`` (GitHub's REST description, OpenAPI 3.0.3)
* ``@octokit/webhooks-schemas`` -> ``schema.json`` (JSON Schema draft-07, one schema per event/action)
* ``@octokit/graphql-schema`` -> ``schema.graphql`` (GitHub's public GraphQL schema, SDL)
* ``@octokit/webhooks-examples`` -> ``api.github.com/index.json`` (recorded webhook payloads)

Output, in ``tests/data/github/`` (committed):

* ``openapi-trimmed.json``: only the operations in :data:`OPERATIONS` plus every component they
  ``$ref``, transitively (media-type examples and operation metadata dropped to keep it small).
* ``webhooks-trimmed.json``: only the event/action schemas in :data:`WEBHOOKS` plus every definition
  they ``$ref``, transitively.
* ``graphql-schema.graphql.gz``: the whole GraphQL schema, gzipped (deterministically, ``mtime=0``):
  a GraphQL schema cannot be trimmed by reachability the way the REST description can (every
  type is reachable from ``Repository``), and the whole file gzips to about 170 kB.
* ``examples.json``: the OpenAPI description's examples named in :data:`OPENAPI_EXAMPLES` and
  the first recorded payload of each event/action in :data:`WEBHOOK_EXAMPLES`, which the
  fidelity tests compare the emulator's objects with (field by field).
* ``LICENSE-octokit.md``: the MIT licence notices of the packages.
* ``sources.json``: package names, versions and integrity hashes used, and what was kept.

Usage::

    python scripts/update_github_schemas.py                      # latest versions
    python scripts/update_github_schemas.py --openapi-version 23.0.2 --webhooks-version 7.6.1 \
        --graphql-version 15.26.1

To cover a new endpoint or event, add it to :data:`OPERATIONS` / :data:`WEBHOOKS` and re-run.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "tests" / "data" / "github"

OPENAPI_PACKAGE = "@octokit/openapi"
OPENAPI_FILE = "package/generated/api.github.com.json"
WEBHOOKS_PACKAGE = "@octokit/webhooks-schemas"
WEBHOOKS_FILE = "package/schema.json"
GRAPHQL_PACKAGE = "@octokit/graphql-schema"
GRAPHQL_FILE = "package/schema.graphql"
EXAMPLES_PACKAGE = "@octokit/webhooks-examples"
EXAMPLES_FILE = "package/api.github.com/index.json"

# components/examples of the OpenAPI description kept for the fidelity tests. Extend freely.
OPENAPI_EXAMPLES: list[str] = [
    "simple-user",
    "private-user",
    "integration",
    "installation",
    "installation-token",
    "full-repository",
    "minimal-repository",
    "branch-get",
    "branch-protection",
    "git-ref",
    "git-commit",
    "commit",
    "hook",
    "hook-delivery",
    "api-overview",
]
# (event, action) whose first recorded payload is kept for the fidelity tests. Extend freely.
WEBHOOK_EXAMPLES: list[tuple[str, str | None]] = [
    ("push", None),
    ("create", None),
    ("delete", None),
    ("ping", None),
    ("repository", "edited"),
    ("repository", "renamed"),
    ("repository", "transferred"),
    ("installation", "created"),
    ("installation", "suspend"),
    ("pull_request", "opened"),
]

# operationIds of every REST operation the emulator serves (or may serve). Extend freely.
OPERATIONS: list[str] = [
    # meta, users, rate limit
    "meta/root",
    "meta/get",
    "rate-limit/get",
    "users/get-authenticated",
    "users/get-by-username",
    # repositories and branches
    "repos/get",
    "repos/update",
    "repos/delete",
    "repos/create-in-org",
    "repos/create-for-authenticated-user",
    "repos/list-branches",
    "repos/get-branch",
    "repos/rename-branch",
    "repos/get-branch-protection",
    "repos/update-branch-protection",
    "repos/delete-branch-protection",
    "repos/get-commit",
    "repos/list-commits",
    "repos/compare-commits",
    "repos/get-content",
    "repos/create-or-update-file-contents",
    "repos/download-tarball-archive",
    "repos/download-zipball-archive",
    "repos/transfer",
    "repos/get-collaborator-permission-level",
    # repository webhooks
    "repos/list-webhooks",
    "repos/create-webhook",
    "repos/get-webhook",
    "repos/update-webhook",
    "repos/delete-webhook",
    "repos/ping-webhook",
    "repos/list-webhook-deliveries",
    "repos/get-webhook-delivery",
    "repos/redeliver-webhook-delivery",
    # git data
    "git/get-blob",
    "git/create-blob",
    "git/get-tree",
    "git/create-tree",
    "git/get-commit",
    "git/create-commit",
    "git/get-ref",
    "git/list-matching-refs",
    "git/create-ref",
    "git/update-ref",
    "git/delete-ref",
    # pull requests
    "pulls/list",
    "pulls/create",
    "pulls/get",
    "pulls/update",
    "pulls/merge",
    "pulls/check-if-merged",
    "pulls/list-commits",
    # GitHub Apps
    "apps/get-authenticated",
    "apps/list-installations",
    "apps/get-installation",
    "apps/delete-installation",
    "apps/suspend-installation",
    "apps/unsuspend-installation",
    "apps/create-installation-access-token",
    "apps/revoke-installation-access-token",
    "apps/get-repo-installation",
    "apps/list-repos-accessible-to-installation",
    "apps/get-webhook-config-for-app",
    "apps/update-webhook-config-for-app",
    "apps/list-webhook-deliveries",
    "apps/get-webhook-delivery",
    "apps/redeliver-webhook-delivery",
]

# (event, action) pairs; action None for events without actions (``<event>$event``). Extend freely.
WEBHOOKS: list[tuple[str, str | None]] = [
    ("ping", None),
    ("push", None),
    ("create", None),
    ("delete", None),
    ("pull_request", "opened"),
    ("pull_request", "synchronize"),
    ("pull_request", "closed"),
    ("pull_request", "reopened"),
    ("pull_request", "edited"),
    ("repository", "created"),
    ("repository", "deleted"),
    ("repository", "renamed"),
    ("repository", "edited"),
    ("repository", "archived"),
    ("repository", "unarchived"),
    ("repository", "transferred"),
    ("installation", "created"),
    ("installation", "deleted"),
    ("installation", "suspend"),
    ("installation", "unsuspend"),
    ("installation", "new_permissions_accepted"),
    ("installation_repositories", "added"),
    ("installation_repositories", "removed"),
    ("branch_protection_rule", "created"),
    ("branch_protection_rule", "edited"),
    ("branch_protection_rule", "deleted"),
]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Operation-object keys not needed for validation (large, and not part of the contract we check).
DROP_OPERATION_KEYS = ("x-github", "externalDocs")
COMPONENT_REF = re.compile(r"^#/components/([^/]+)/([^/]+)$")
DEFINITION_REF = re.compile(r"^#/definitions/([^/]+)$")


def npm_pack(package: str, version: str | None, dest: Path) -> tuple[Path, dict[str, Any]]:
    """Run ``npm pack`` for ``package[@version]`` into ``dest``; return the tarball and npm's info."""
    spec = f"{package}@{version}" if version else package
    proc = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(dest), spec],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(proc.stdout)[0]
    return dest / info["filename"], info


def read_member(tarball: Path, member: str) -> bytes:
    with tarfile.open(tarball, "r:gz") as tar:
        extracted = tar.extractfile(member)
        if extracted is None:
            raise SystemExit(f"{member} not found in {tarball.name}")
        return extracted.read()


def iter_refs(node: Any) -> Iterable[str]:
    """Yield every ``$ref`` string found anywhere in ``node``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from iter_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from iter_refs(value)


def strip_media_examples(node: Any) -> None:
    """Drop ``examples`` from media-type objects (responses' ``content`` maps), in place."""
    if isinstance(node, dict):
        content = node.get("content")
        if isinstance(content, dict):
            for media in content.values():
                if isinstance(media, dict):
                    media.pop("examples", None)
                    media.pop("example", None)
        for value in node.values():
            strip_media_examples(value)
    elif isinstance(node, list):
        for value in node:
            strip_media_examples(value)


def trim_openapi(spec: dict[str, Any], operation_ids: list[str]) -> dict[str, Any]:
    """Keep only ``operation_ids`` and the components they reference, transitively."""
    wanted = set(operation_ids)
    paths: dict[str, Any] = {}
    found: set[str] = set()
    for path, item in spec["paths"].items():
        kept: dict[str, Any] = {}
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict) and op.get("operationId") in wanted:
                op = copy.deepcopy(op)
                for key in DROP_OPERATION_KEYS:
                    op.pop(key, None)
                kept[method] = op
                found.add(op["operationId"])
        if kept:
            if "parameters" in item:
                kept["parameters"] = copy.deepcopy(item["parameters"])
            paths[path] = kept
    missing = wanted - found
    if missing:
        raise SystemExit(f"operations not in the description: {sorted(missing)}")
    strip_media_examples(paths)

    components: dict[str, dict[str, Any]] = {}
    queue = list(iter_refs(paths))
    while queue:
        ref = queue.pop()
        match = COMPONENT_REF.match(ref)
        if not match:
            raise SystemExit(f"unsupported $ref {ref!r}")
        kind, name = match.groups()
        if name in components.get(kind, {}):
            continue
        target = copy.deepcopy(spec["components"][kind][name])
        strip_media_examples(target)
        components.setdefault(kind, {})[name] = target
        queue.extend(iter_refs(target))

    return {
        "openapi": spec["openapi"],
        "info": {
            **spec["info"],
            "x-trimmed": "Trimmed by scripts/update_github_schemas.py for ghsync's tests; "
            "see LICENSE-octokit.md and sources.json.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {kind: dict(sorted(entries.items())) for kind, entries in sorted(components.items())},
    }


def webhook_definition_name(event: str, action: str | None) -> str:
    return f"{event}${action}" if action else f"{event}$event"


def trim_webhooks(schema: dict[str, Any], pairs: list[tuple[str, str | None]]) -> dict[str, Any]:
    """Keep only the event/action schemas in ``pairs`` and the definitions they reference."""
    definitions = schema["definitions"]
    roots = [webhook_definition_name(event, action) for event, action in pairs]
    missing = [name for name in roots if name not in definitions]
    if missing:
        raise SystemExit(f"webhook schemas not in the package: {missing}")
    kept: dict[str, Any] = {}
    queue = list(roots)
    while queue:
        name = queue.pop()
        if name in kept:
            continue
        kept[name] = definitions[name]
        for ref in iter_refs(definitions[name]):
            match = DEFINITION_REF.match(ref)
            if not match:
                raise SystemExit(f"unsupported $ref {ref!r}")
            queue.append(match.group(1))
    return {
        "$schema": schema["$schema"],
        "$comment": "Trimmed by scripts/update_github_schemas.py for ghsync's tests; "
        "see LICENSE-octokit.md and sources.json.",
        "definitions": dict(sorted(kept.items())),
        "oneOf": [{"$ref": f"#/definitions/{name}"} for name in roots],
    }


LICENSE_TEMPLATE = """\
# Licence notices for the files in this directory

`openapi-trimmed.json` and `webhooks-trimmed.json` are trimmed copies of files from two npm
packages, and `graphql-schema.graphql.gz` a gzipped copy of a file from a third, produced by
`scripts/update_github_schemas.py`. All three packages are published under the MIT licence; their
notices follow.

## {openapi_package} {openapi_version}

Source: https://github.com/octokit/openapi (file `generated/api.github.com.json`, derived from
https://github.com/github/rest-api-description)

{openapi_license}

## {webhooks_package} {webhooks_version}

Source: https://github.com/octokit/webhooks (file `schema.json`; `examples.json` also holds
payloads recorded in {examples_package} {examples_version}, from the same repository under the
same licence, and examples from the OpenAPI description above). The npm package declares
`"license": "MIT"` in its package.json but ships no LICENSE file; the repository's notice is:

{webhooks_license}

## {graphql_package} {graphql_version}

Source: https://github.com/octokit/graphql-schema (file `schema.graphql`, GitHub's public schema)

{graphql_license}
"""

# The npm tarball of @octokit/webhooks-schemas has no LICENSE file; this is octokit/webhooks' own.
WEBHOOKS_LICENSE = """\
MIT License

Copyright (c) 2018 Octokit contributors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


def pick_examples(spec: dict[str, Any], recorded: list[dict[str, Any]]) -> dict[str, Any]:
    """The named OpenAPI examples and the first recorded payload of each webhook pair."""
    examples = spec["components"]["examples"]
    missing = [name for name in OPENAPI_EXAMPLES if name not in examples]
    if missing:
        raise SystemExit(f"examples not in the description: {missing}")
    by_event = {entry["name"]: entry["examples"] for entry in recorded}
    hooks: dict[str, Any] = {}
    for event, action in WEBHOOK_EXAMPLES:
        found = [p for p in by_event.get(event, []) if p.get("action") == action]
        if not found:
            raise SystemExit(f"no recorded {event} {action} payload")
        hooks[webhook_definition_name(event, action)] = found[0]
    return {"openapi": {name: examples[name]["value"] for name in OPENAPI_EXAMPLES}, "webhooks": hooks}


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openapi-version", help=f"{OPENAPI_PACKAGE} version (default: latest)")
    parser.add_argument("--webhooks-version", help=f"{WEBHOOKS_PACKAGE} version (default: latest)")
    parser.add_argument("--graphql-version", help=f"{GRAPHQL_PACKAGE} version (default: latest)")
    parser.add_argument("--examples-version", help=f"{EXAMPLES_PACKAGE} version (default: latest)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ghsync-schemas-") as tmp:
        tmpdir = Path(tmp)
        openapi_tgz, openapi_info = npm_pack(OPENAPI_PACKAGE, args.openapi_version, tmpdir)
        webhooks_tgz, webhooks_info = npm_pack(WEBHOOKS_PACKAGE, args.webhooks_version, tmpdir)
        spec = json.loads(read_member(openapi_tgz, OPENAPI_FILE))
        hooks = json.loads(read_member(webhooks_tgz, WEBHOOKS_FILE))
        openapi_license = read_member(openapi_tgz, "package/LICENSE").decode().strip()
        graphql_tgz, graphql_info = npm_pack(GRAPHQL_PACKAGE, args.graphql_version, tmpdir)
        graphql_sdl = read_member(graphql_tgz, GRAPHQL_FILE)
        graphql_license = read_member(graphql_tgz, "package/LICENSE.md").decode().strip()
        examples_tgz, examples_info = npm_pack(EXAMPLES_PACKAGE, args.examples_version, tmpdir)
        recorded = json.loads(read_member(examples_tgz, EXAMPLES_FILE))

    if spec.get("openapi") != "3.0.3":
        print(f"warning: expected OpenAPI 3.0.3, got {spec.get('openapi')}", file=sys.stderr)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    trimmed_openapi = trim_openapi(spec, OPERATIONS)
    trimmed_hooks = trim_webhooks(hooks, WEBHOOKS)
    write_json(out / "openapi-trimmed.json", trimmed_openapi)
    write_json(out / "webhooks-trimmed.json", trimmed_hooks)
    (out / "graphql-schema.graphql.gz").write_bytes(gzip.compress(graphql_sdl, 9, mtime=0))
    write_json(out / "examples.json", pick_examples(spec, recorded))
    (out / "LICENSE-octokit.md").write_text(
        LICENSE_TEMPLATE.format(
            openapi_package=OPENAPI_PACKAGE,
            openapi_version=openapi_info["version"],
            openapi_license=openapi_license,
            webhooks_package=WEBHOOKS_PACKAGE,
            webhooks_version=webhooks_info["version"],
            webhooks_license=WEBHOOKS_LICENSE,
            graphql_package=GRAPHQL_PACKAGE,
            graphql_version=graphql_info["version"],
            graphql_license=graphql_license,
            examples_package=EXAMPLES_PACKAGE,
            examples_version=examples_info["version"],
        ),
        encoding="utf-8",
    )
    write_json(
        out / "sources.json",
        {
            "generated_by": "scripts/update_github_schemas.py",
            "packages": {
                OPENAPI_PACKAGE: {
                    "version": openapi_info["version"],
                    "integrity": openapi_info.get("integrity"),
                    "file": OPENAPI_FILE.removeprefix("package/"),
                    "openapi": spec.get("openapi"),
                },
                WEBHOOKS_PACKAGE: {
                    "version": webhooks_info["version"],
                    "integrity": webhooks_info.get("integrity"),
                    "file": WEBHOOKS_FILE.removeprefix("package/"),
                },
                GRAPHQL_PACKAGE: {
                    "version": graphql_info["version"],
                    "integrity": graphql_info.get("integrity"),
                    "file": GRAPHQL_FILE.removeprefix("package/"),
                },
                EXAMPLES_PACKAGE: {
                    "version": examples_info["version"],
                    "integrity": examples_info.get("integrity"),
                    "file": EXAMPLES_FILE.removeprefix("package/"),
                },
            },
            "operations": OPERATIONS,
            "webhooks": [webhook_definition_name(event, action) for event, action in WEBHOOKS],
        },
    )
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.suffix in {".json", ".md", ".gz"}}
    print(
        f"{OPENAPI_PACKAGE} {openapi_info['version']}: {len(OPERATIONS)} operations, "
        f"{sum(len(v) for v in trimmed_openapi['components'].values())} components; "
        f"{WEBHOOKS_PACKAGE} {webhooks_info['version']}: {len(WEBHOOKS)} event schemas, "
        f"{len(trimmed_hooks['definitions'])} definitions; sizes {sizes}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
