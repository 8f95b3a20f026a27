"""Issue 8, item 13: tarball and zipball answer 302 to a download URL that serves the archive."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import httpx

from conftest import Installed, api
from github_emulator.testing import run_emulator


def test_tarball_redirects_to_an_archive_of_the_tree(installed: Installed) -> None:
    c = installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    redirect = c.get("/repos/octo/hello/tarball/main")  # validated: 302, no body
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.endswith(f"/octo/hello/legacy.tar.gz/{head}")
    download = httpx.get(location, trust_env=False)  # no credentials needed for a public repo
    assert download.status_code == 200 and download.headers["content-type"] == "application/x-gzip"
    assert f"filename=octo-hello-{head[:7]}.tar.gz" in download.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        readme = tar.extractfile(f"octo-hello-{head[:7]}/README.md")
        assert readme is not None and readme.read() == b"# hello\n"
    assert names == [f"octo-hello-{head[:7]}/README.md", f"octo-hello-{head[:7]}/src/app.py"]


def test_zipball_of_default_branch_sha_and_missing_ref(installed: Installed) -> None:
    c = installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    # Without a ref, the default branch: GitHub's docs say so, though its OpenAPI description
    # lists only the form with {ref}, so that one answer is not schema-checked.
    with api(installed.emu, installed.token, validate=False) as unchecked:
        no_ref = unchecked.get("/repos/octo/hello/zipball")
    for path, redirect in (("(none)", no_ref), (head[:10], c.get(f"/repos/octo/hello/zipball/{head[:10]}"))):
        assert redirect.status_code == 302, path
        archive = httpx.get(redirect.headers["location"], trust_env=False, follow_redirects=False)
        with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
            assert z.read(f"octo-hello-{head[:7]}/src/app.py") == b"print('hi')\n"
    assert c.get("/repos/octo/hello/zipball/no-such-branch").status_code == 404
    log = [r for r in installed.emu.requests() if "/zipball" in r["path"]]
    assert [r["status"] for r in log] == [302, 302, 404]  # redirected rows are logged


def test_private_repository_download_needs_the_signed_link(tmp_path: Path) -> None:
    with run_emulator(tmp_path / "e") as emu:
        app = emu.create_app("a")
        emu.create_repo("octo", "secret", private=True, files={"s.txt": "s\n"})
        inst = emu.create_installation(app.id, "octo", ["octo/secret"])
        with api(emu, emu.installation_token(app, inst)) as c:
            location = c.get("/repos/octo/secret/tarball/main").headers["location"]
        assert "?token=" in location
        assert httpx.get(location, trust_env=False).status_code == 200
        forged = location.split("?token=")[0] + "?token=9999999999.deadbeef"
        assert httpx.get(forged, trust_env=False).status_code == 404
        assert httpx.get(location.split("?")[0], trust_env=False).status_code == 404
        with api(emu) as anonymous:
            assert anonymous.get("/repos/octo/secret/tarball/main").status_code == 404
