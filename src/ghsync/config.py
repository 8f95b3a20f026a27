"""Service configuration from environment variables, using the plan's names, defaults and units."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ghsync.domain.errors import ConfigError
from ghsync.observability.logging import remember_secret

MIB = 1024 * 1024


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting ghsync reads; the field name upper-cased is the environment variable."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # GitHub App authentication
    github_app_id: str | None = Field(default=None, description="The GitHub App's numeric id.")
    # Secrets are kept out of repr(), so logging the settings cannot leak them.
    github_app_private_key: str | None = Field(
        default=None, description="The App's private key: PEM text, or a path to a PEM file.", repr=False
    )
    github_webhook_secret: str | None = Field(
        default=None, description="Secret of the App-level webhook (POST /v1/webhooks/github).", repr=False
    )
    github_api_url: str = Field(
        default="https://api.github.com",
        description="REST API base URL: GitHub, GitHub Enterprise Server (…/api/v3) or the emulator.",
    )

    # Feature flags
    github_sync_enabled: bool = Field(default=True, description="Global switch for all syncing.")
    github_sync_polling_enabled: bool = Field(
        default=True, description="Polling safety net for missed webhooks."
    )
    github_sync_ip_allowlisting_enabled: bool = Field(
        default=False, description="Accept webhooks only from GitHub's /meta hook ranges."
    )

    # Performance and limits
    github_sync_polling_interval: int = Field(
        default=300_000, ge=1_000, description="Polling interval in milliseconds (default 5 min)."
    )
    github_sync_max_file_size: int = Field(
        default=100 * MIB, gt=0, description="Block limit per file in bytes (GitHub: 100 MiB)."
    )
    github_sync_warn_file_size: int = Field(
        default=50 * MIB, gt=0, description="Warning threshold per file in bytes (GitHub: 50 MiB)."
    )
    github_sync_tree_size_limit: int = Field(
        default=100_000, gt=0, description="Max entries per tree request (Git Data API limit)."
    )
    github_sync_tree_size_mb: int = Field(
        default=7, gt=0, description="Max size of one tree request in MB (Git Data API limit)."
    )
    github_webhook_payload_limit: int = Field(
        default=25 * MIB, gt=0, description="Max webhook body in bytes (GitHub caps at 25 MB)."
    )

    # Token management
    github_token_cache_ttl: int = Field(
        default=3300, gt=0, description="Installation token cache TTL in seconds (expiry is 3600)."
    )
    github_rate_limit_buffer: int = Field(
        default=100, ge=0, description="Requests kept in reserve per installation for user actions."
    )
    # GitHub asks integrations to wait at least a second between mutative requests:
    # https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
    github_write_interval: float = Field(
        default=1.0, ge=0, le=60, description="Seconds between content-creating requests per installation."
    )

    # The blast-radius guard: a sync that would delete or overwrite most of a side is held for confirmation.
    ghsync_sync_guard_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of a side's files a sync may delete or overwrite unheld."
    )
    ghsync_sync_guard_min_files: int = Field(
        default=10, ge=1, description="The share applies from this many deleted or overwritten files."
    )
    ghsync_sync_guard_max_files: int = Field(
        default=1000, ge=1, description="More deleted or overwritten files than this are always held."
    )

    # The git smart-HTTP transport: outbound changes by git push (the rule in domain/outbound.py picks it
    # from a change's shape) and the first commit into an empty repository.
    ghsync_git_transport_enabled: bool = Field(
        default=True, description="Use git smart HTTP for large changes and empty repositories."
    )
    ghsync_git_transport_url: str | None = Field(
        default=None, description="Git base URL; unset = derived from GITHUB_API_URL (github.com, GHES host)."
    )
    ghsync_git_transport_min_files: int = Field(
        default=100, ge=1, description="Changed files from which a change goes by git."
    )
    ghsync_git_transport_min_inline_bytes: int = Field(
        default=256 * 1024, ge=1, description="Bytes of changed text from which a change goes by git."
    )
    ghsync_git_transport_min_missing_blobs: int = Field(
        default=2, ge=1, description="Blobs GitHub lacks (binary files) from which a change goes by git."
    )
    ghsync_git_transport_min_missing_blob_bytes: int = Field(
        default=MIB, ge=1, description="Bytes of blobs GitHub lacks from which a change goes by git."
    )

    # Redis (webhook dedup, shared token cache, locks); the database is used when unset
    redis_host: str | None = Field(default=None, description="Redis host; unset = use the DB.")
    redis_port: int = Field(default=6379, gt=0, lt=65536, description="Redis port.")
    github_delivery_ttl: int = Field(
        default=604_800, gt=0, description="How long delivery ids are remembered, in seconds."
    )

    # S3-canonical storage mode
    s3_git_bucket: str | None = Field(default=None, description="Bucket for git-remote-s3.")
    s3_git_region: str | None = Field(default=None, description="Region of the bucket.")
    s3_git_kms_key_id: str | None = Field(default=None, description="KMS key for SSE-KMS.")
    s3_primary_storage_enabled: bool = Field(
        default=False, description="Make S3 the canonical store of new projects."
    )
    s3_concurrent_write_protection: bool = Field(
        default=True, description="Serialize S3 pushes per (project, branch)."
    )
    s3_head_repair_interval: int = Field(
        default=300_000, ge=1_000, description="Interval of the S3 head repair job in milliseconds."
    )

    # ghsync's own
    ghsync_data_dir: Path = Field(
        default=Path("./ghsync-data"), description="Local stores, embedded database, caches."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<GHSYNC_DATA_DIR>/ghsync.db.",
    )
    ghsync_api_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated bearer tokens accepted by the API.", repr=False
    )
    ghsync_webhook_rate_limit: float = Field(
        default=100.0, ge=0, description="Webhook requests per second per source address; 0 = unlimited."
    )
    ghsync_webhook_rate_burst: int = Field(
        default=1000, gt=0, description="Webhook requests a source may send at once before the rate applies."
    )
    ghsync_max_request_body: int = Field(
        default=256 * MIB,
        gt=0,
        description="Max request body in bytes on every API route (413 past it); webhooks have their own.",
    )
    ghsync_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed by CORS; empty (the default) sends no CORS headers.",
    )
    ghsync_delivery_sweep_interval: int = Field(
        default=300, ge=0, description="Seconds between sweeps redelivering failed App deliveries; 0 = off."
    )
    ghsync_delivery_retention_days: int = Field(
        default=3, ge=1, le=30, description="Days deliveries stay redeliverable (GitHub 3, GHES 7)."
    )
    ghsync_notify_url: str | None = Field(
        default=None,
        description="Where to POST notifications (conflicts, failures, held plans); unset = none are sent.",
    )
    ghsync_notify_secret: str | None = Field(
        default=None,
        description="Signs each notification: X-Ghsync-Signature-256 = sha256=HMAC-SHA256(secret, body).",
        repr=False,
    )
    ghsync_notify_interval: float = Field(
        default=10.0, gt=0, description="Seconds between runs of the notification delivery task."
    )
    ghsync_encryption_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `key_id:base64(32 bytes)`; the first one encrypts.",
        repr=False,
    )

    _split_tokens = field_validator(
        "ghsync_api_tokens", "ghsync_encryption_keys", "ghsync_cors_origins", mode="before"
    )(_split_csv)

    @field_validator("ghsync_encryption_keys")
    @classmethod
    def _check_keys(cls, keys: list[str]) -> list[str]:
        seen: set[str] = set()
        for entry in keys:
            key_id, sep, encoded = entry.partition(":")
            if not sep or not key_id:
                raise ValueError("each key must be written `key_id:base64-of-32-bytes`")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"key {key_id!r} is not valid base64") from exc
            if len(raw) != 32:
                raise ValueError(f"key {key_id!r} must decode to 32 bytes, got {len(raw)}")
            if key_id in seen:
                raise ValueError(f"key id {key_id!r} appears twice")
            seen.add(key_id)
        return keys

    @field_validator("ghsync_git_transport_url")
    @classmethod
    def _check_git_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return url.rstrip("/") if url else None

    @field_validator("github_api_url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _remember_secrets(self) -> Settings:
        # So that no log line carries them (observability/logging.py redacts, the tests scan).
        remember_secret(
            *self.ghsync_api_tokens,
            *self.ghsync_encryption_keys,
            *(entry.partition(":")[2] for entry in self.ghsync_encryption_keys),
            self.github_webhook_secret,
            self.github_app_private_key,
        )
        return self

    @model_validator(mode="after")
    def _check_file_limits(self) -> Settings:
        if self.github_sync_warn_file_size > self.github_sync_max_file_size:
            raise ValueError("GITHUB_SYNC_WARN_FILE_SIZE must not exceed GITHUB_SYNC_MAX_FILE_SIZE")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.ghsync_data_dir / 'ghsync.db').resolve()}"

    @property
    def polling_interval_seconds(self) -> float:
        return self.github_sync_polling_interval / 1000


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings, turning a validation failure into a ConfigError naming each variable.

    `env` replaces the process environment (tests); `overrides` are field values that win over it.
    """
    try:
        if env is None:
            return Settings(**overrides)
        values: dict[str, Any] = {
            name: env[name.upper()] for name in Settings.model_fields if name.upper() in env
        }
        for name in ("ghsync_api_tokens", "ghsync_encryption_keys"):
            if name in values:
                values[name] = _split_csv(values[name])
        values.update(overrides)
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if part != "__root__"]
        variable = location[0].upper() if location else "(settings)"
        field = Settings.model_fields.get(location[0]) if location else None
        expects = f" ({field.description})" if field is not None and field.description else ""
        got = error.get("input")
        shown = "" if isinstance(got, dict) or got is None else f"; got {got!r}"
        if field is not None and not field.repr:
            shown = ""  # never echo secrets
        lines.append(f"  {variable}: {error['msg']}{expects}{shown}")
    return "\n".join(lines)
