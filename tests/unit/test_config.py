"""Configuration: the plan's names, defaults and units; bad values fail naming the variable."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ghsync.config import MIB, load_settings
from ghsync.domain.errors import ConfigError

KEY = base64.b64encode(b"k" * 32).decode()


def test_defaults_follow_the_plan() -> None:
    settings = load_settings({})
    assert settings.github_sync_polling_interval == 300_000  # milliseconds
    assert settings.polling_interval_seconds == 300
    assert settings.github_token_cache_ttl == 3300  # seconds, 5 minutes under the 1-hour expiry
    assert settings.github_delivery_ttl == 604_800
    assert settings.github_sync_max_file_size == 100 * MIB
    assert settings.github_sync_warn_file_size == 50 * MIB
    assert settings.github_sync_tree_size_limit == 100_000
    assert settings.github_sync_tree_size_mb == 7
    assert settings.github_webhook_payload_limit == 25 * MIB
    assert settings.github_api_url == "https://api.github.com"
    assert settings.redis_host is None and settings.redis_port == 6379
    assert settings.s3_head_repair_interval == 300_000
    assert settings.s3_primary_storage_enabled is False
    assert settings.ghsync_data_dir == Path("./ghsync-data")
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("ghsync-data/ghsync.db")


def test_values_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "GITHUB_SYNC_POLLING_INTERVAL": "60000",
            "GHSYNC_API_TOKENS": "one, two",
            "GHSYNC_ENCRYPTION_KEYS": f"k1:{KEY},k2:{KEY}",
            "GITHUB_API_URL": "http://127.0.0.1:9100/api/v3/",
            "DATABASE_URL": "postgresql://u@h/db",
            "GITHUB_SYNC_ENABLED": "false",
        }
    )
    assert settings.polling_interval_seconds == 60
    assert settings.ghsync_api_tokens == ["one", "two"]
    assert settings.ghsync_encryption_keys == [f"k1:{KEY}", f"k2:{KEY}"]
    assert settings.github_api_url == "http://127.0.0.1:9100/api/v3"
    assert settings.effective_database_url == "postgresql://u@h/db"
    assert settings.github_sync_enabled is False


def test_the_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHSYNC_API_TOKENS", "a,b")
    monkeypatch.setenv("GITHUB_RATE_LIMIT_BUFFER", "7")
    settings = load_settings()
    assert settings.ghsync_api_tokens == ["a", "b"]
    assert settings.github_rate_limit_buffer == 7


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GITHUB_SYNC_POLLING_INTERVAL", "soon", "GITHUB_SYNC_POLLING_INTERVAL"),
        ("GITHUB_SYNC_POLLING_INTERVAL", "10", "milliseconds"),
        ("REDIS_PORT", "99999", "REDIS_PORT"),
        ("GITHUB_API_URL", "ftp://x", "http"),
        ("GHSYNC_ENCRYPTION_KEYS", "nokeyid", "key_id:base64"),
        ("GHSYNC_ENCRYPTION_KEYS", "k1:" + base64.b64encode(b"short").decode(), "32 bytes"),
        ("GITHUB_SYNC_ENABLED", "perhaps", "GITHUB_SYNC_ENABLED"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: value})
    assert variable in error.value.message
    assert expected in error.value.message


def test_secrets_are_not_echoed_in_errors() -> None:
    secret = "k1:" + base64.b64encode(b"secret-material").decode()
    with pytest.raises(ConfigError) as error:
        load_settings({"GHSYNC_ENCRYPTION_KEYS": secret})
    assert "secret-material" not in error.value.message
    assert base64.b64encode(b"secret-material").decode() not in error.value.message


def test_warning_limit_cannot_exceed_block_limit() -> None:
    with pytest.raises(ConfigError, match="GITHUB_SYNC_WARN_FILE_SIZE"):
        load_settings({"GITHUB_SYNC_MAX_FILE_SIZE": "10", "GITHUB_SYNC_WARN_FILE_SIZE": "20"})


def test_secrets_stay_out_of_repr() -> None:
    settings = load_settings(
        {
            "GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----secret",
            "GITHUB_WEBHOOK_SECRET": "hook-secret",
            "GHSYNC_API_TOKENS": "api-token",
            "GHSYNC_ENCRYPTION_KEYS": f"k1:{KEY}",
        }
    )
    shown = repr(settings) + str(settings)
    for secret in ("PRIVATE KEY", "hook-secret", "api-token", KEY):
        assert secret not in shown
    assert settings.github_webhook_secret == "hook-secret"
