"""GitHub App auth: JWT rules, installation tokens (expiry, on-demand expiry), 401 bodies, user tokens."""

from __future__ import annotations

import time

import jwt

from conftest import Installed, api
from github_emulator.testing import EmulatorHandle


def test_jwt_rules(installed: Installed) -> None:
    emu, app = installed.emu, installed.app
    now = int(time.time())

    def call(token: str) -> tuple[int, str]:
        with api(emu) as c:
            r = c.get("/app", headers={"Authorization": f"Bearer {token}"})
            return r.status_code, r.json().get("message", "")

    def sign(claims: dict[str, object]) -> str:
        return jwt.encode(claims, app.private_key, algorithm="RS256")

    assert call(emu.app_jwt(app))[0] == 200
    assert call(sign({"iat": now - 60, "exp": now - 1, "iss": str(app.id)})) == (
        401,
        "'Expiration time' claim ('exp') must be a numeric value representing the future time "
        "at which the assertion expires",
    )
    assert call(sign({"iat": now, "exp": now + 3600, "iss": str(app.id)})) == (
        401,
        "'Expiration time' claim ('exp') is too far in the future",
    )
    assert call(sign({"iat": now + 600, "exp": now + 660, "iss": str(app.id)}))[0] == 401
    other_key = emu.create_app("other").private_key
    assert call(
        jwt.encode({"iat": now - 60, "exp": now + 500, "iss": str(app.id)}, other_key, algorithm="RS256")
    ) == (
        401,
        "A JSON web token could not be decoded",
    )
    assert call("not.a.jwt") == (401, "A JSON web token could not be decoded")


def test_installations_and_tokens(installed: Installed) -> None:
    emu, app = installed.emu, installed.app
    with api(emu) as c:
        c.headers["Authorization"] = f"Bearer {emu.app_jwt(app)}"
        listed = c.get("/app/installations").json()
        assert [i["id"] for i in listed] == [installed.installation_id]
        assert c.get("/repos/octo/hello/installation").json()["id"] == installed.installation_id
        assert c.get("/repos/octo/missing/installation").status_code == 404
        token = c.post(f"/app/installations/{installed.installation_id}/access_tokens").json()
        assert token["token"].startswith("ghs_")
        expires = time.mktime(time.strptime(token["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        assert 3500 < expires - time.time() <= 3600
        # The JWT is not a repository credential; an installation token is not an App JWT.
        assert (
            c.get("/app/installations", headers={"Authorization": f"token {token['token']}"}).status_code
            == 401
        )
    with api(emu, token["token"]) as c:
        repos = c.get("/installation/repositories").json()
        assert [r["full_name"] for r in repos["repositories"]] == ["octo/hello"]
    emu.expire_tokens(installation_id=installed.installation_id)
    with api(emu, token["token"]) as c:
        expired = c.get("/repos/octo/hello")
        assert expired.status_code == 401
        assert expired.json() == {
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        }


def test_token_ttl_is_configurable(tmp_path: object) -> None:
    from pathlib import Path

    from github_emulator.testing import run_emulator

    with run_emulator(Path(str(tmp_path)) / "e", token_ttl_seconds=1) as emu:
        app = emu.create_app("ttl")
        emu.create_repo("o", "r", files={"a": "a"})
        inst = emu.create_installation(app.id, "o", ["o/r"])
        token = emu.installation_token(app, inst)
        with api(emu, token) as c:
            assert c.get("/repos/o/r").status_code == 200
            time.sleep(1.1)
            assert c.get("/repos/o/r").status_code == 401


def test_user_tokens(emu: EmulatorHandle) -> None:
    user = emu.create_user("mona", name="Mona Lisa")
    emu.create_repo("mona", "own", private=True, files={"a": "a"})
    with api(emu, user.token) as c:
        me = c.get("/user").json()
        assert me["login"] == "mona" and me["name"] == "Mona Lisa"
        assert c.get("/repos/mona/own").status_code == 200
    with api(emu, "ghp_wrong") as c:
        assert c.get("/user").status_code == 401
