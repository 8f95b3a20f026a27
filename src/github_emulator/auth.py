"""Who is calling: App JWTs, installation access tokens, user tokens, and GitHub's 401 rules."""

from __future__ import annotations

import base64
import binascii
import secrets
import string
import time
from dataclasses import dataclass
from typing import Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from github_emulator.store import AppRecord, Store, TokenRecord

PrincipalKind = Literal["anonymous", "app", "installation", "user"]

AUTH_DOCS = "https://docs.github.com/rest"
JWT_DOCS = (
    "https://docs.github.com/apps/building-github-apps/"
    "authenticating-with-github-apps/#authenticating-as-a-github-app"
)


class AuthError(Exception):
    """An authentication failure that GitHub answers with 401 and ``message``."""

    def __init__(self, message: str, documentation_url: str = AUTH_DOCS) -> None:
        super().__init__(message)
        self.message = message
        self.documentation_url = documentation_url


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    app_id: int | None = None
    installation_id: int | None = None
    user_login: str | None = None
    token: TokenRecord | None = None
    remote: str = "anonymous"

    @property
    def rate_key(self) -> str:
        """Rate limits are counted per installation, user, app, or client address."""
        if self.kind == "installation":
            return f"installation:{self.installation_id}"
        if self.kind == "user":
            return f"user:{(self.user_login or '').lower()}"
        if self.kind == "app":
            return f"app:{self.app_id}"
        return f"anonymous:{self.remote}"


ANONYMOUS = Principal(kind="anonymous")


def generate_key_pair() -> tuple[str, str]:
    """An RSA key pair for a new App: (private PEM in PKCS#1 as GitHub hands out, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


_ALPHABET = string.ascii_letters + string.digits


def new_token(prefix: str) -> str:
    """Token formats follow GitHub's prefixes: ``ghs_`` installation, ``ghp_`` personal."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(36))


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith(("ghs_", "ghp_", "ghu_"))


def verify_app_jwt(token: str, store: Store, max_lifetime: int, now: float | None = None) -> AppRecord:
    """Check an App JWT as GitHub does.

    https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app:
    RS256, ``iss`` is the App's id (or client id), ``iat`` not in the future (60 s of clock drift
    allowed), ``exp`` in the future and no more than 10 minutes ahead.
    """
    now = time.time() if now is None else now
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError("A JSON web token could not be decoded", JWT_DOCS) from exc
    if header.get("alg") != "RS256":
        raise AuthError("A JSON web token could not be decoded", JWT_DOCS)
    iss = claims.get("iss")
    app: AppRecord | None = None
    with store.lock:
        for candidate in store.data.apps.values():
            if str(candidate.id) == str(iss) or candidate.client_id == str(iss):
                app = candidate
                break
    if iss is None:
        raise AuthError("'Issuer' claim ('iss') must be an Integer", JWT_DOCS)
    if app is None:
        raise AuthError("Integration not found", JWT_DOCS)
    try:
        jwt.decode(
            token,
            app.public_key_pem,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise AuthError("A JSON web token could not be decoded", JWT_DOCS) from exc
    iat = claims.get("iat")
    exp = claims.get("exp")
    if not isinstance(iat, int) or iat > now + 60:
        raise AuthError(
            "'Issued at' claim ('iat') must be an Integer representing the time that the "
            "assertion was issued",
            JWT_DOCS,
        )
    if not isinstance(exp, int | float) or exp <= now:
        raise AuthError(
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires",
            JWT_DOCS,
        )
    if exp - iat > max_lifetime + 60 or exp > now + max_lifetime + 60:
        raise AuthError("'Expiration time' claim ('exp') is too far in the future", JWT_DOCS)
    return app


def resolve_bearer(token: str, store: Store, max_lifetime: int, remote: str) -> Principal:
    """Map a bearer/``token`` credential to a principal or raise :class:`AuthError`."""
    if _looks_like_jwt(token):
        app = verify_app_jwt(token, store, max_lifetime)
        return Principal(kind="app", app_id=app.id, remote=remote)
    with store.lock:
        record = store.data.tokens.get(token)
    if record is None:
        raise AuthError("Bad credentials")
    if record.expires_at is not None and record.expires_at <= time.time():
        # An expired installation token is simply bad credentials to GitHub.
        raise AuthError("Bad credentials")
    if record.kind == "installation":
        with store.lock:
            inst = store.data.installations.get(record.installation_id or -1)
        if inst is None:
            raise AuthError("Bad credentials")
        return Principal(
            kind="installation",
            app_id=inst.app_id,
            installation_id=inst.id,
            token=record,
            remote=remote,
        )
    return Principal(kind="user", user_login=record.user_login, token=record, remote=remote)


def principal_from_header(
    authorization: str | None, store: Store, max_lifetime: int, remote: str
) -> Principal:
    """Parse ``Authorization`` (``Bearer``, ``token`` or ``Basic``) into a principal."""
    if not authorization:
        return Principal(kind="anonymous", remote=remote)
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme in ("bearer", "token") and value:
        return resolve_bearer(value, store, max_lifetime, remote)
    if scheme == "basic" and value:
        return principal_from_basic(value, store, max_lifetime, remote)
    raise AuthError("Bad credentials")


def principal_from_basic(value: str, store: Store, max_lifetime: int, remote: str) -> Principal:
    """Basic auth as git sends it: ``x-access-token:<token>`` or ``<login>:<user token>``."""
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthError("Bad credentials") from exc
    user, _, password = decoded.partition(":")
    principal = resolve_bearer(password, store, max_lifetime, remote)
    if principal.kind == "app":
        raise AuthError("Bad credentials")
    if (
        principal.kind == "user"
        and user.lower() not in ("x-access-token", (principal.user_login or "").lower())
        and user
    ):
        raise AuthError("Bad credentials")
    return principal
