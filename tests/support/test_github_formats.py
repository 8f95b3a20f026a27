"""The strict format checks (RFC 3339 date-time, RFC 3986 uri, RFC 5321 email) used by the validator."""

from __future__ import annotations

import pytest

from support.github_schemas import SchemaMismatch, is_date_time, is_email, is_uri, validate_response


@pytest.mark.parametrize(
    "value",
    [
        "2011-01-26T19:01:12Z",
        "2011-01-26T19:01:12+01:00",
        "2011-01-26T19:01:12.123-08:30",
        "1990-12-31T23:59:60Z",  # a leap second is valid RFC 3339
        "2011-01-26t19:01:12z",
    ],
)
def test_date_times_github_sends_pass(value: str) -> None:
    assert is_date_time(value)


@pytest.mark.parametrize(
    "value",
    [
        "2011-01-26 19:01:12Z",  # space, not T
        "2011-01-26T19:01:12",  # no offset
        "2011-02-30T00:00:00Z",  # no such day
        "2011-01-26T24:00:00Z",
        "2011-01-26T19:01:61Z",
        "2011-01-26T19:01:12+25:00",
        "2011-1-26T19:01:12Z",
        "1296068472",  # epoch seconds (the push payload's repository.created_at is one, as an integer)
    ],
)
def test_date_times_rfc3339_rejects(value: str) -> None:
    assert not is_date_time(value)


@pytest.mark.parametrize(
    "value",
    [
        "https://api.github.com/repos/octocat/Hello-World",
        "https://api.github.com/repos/o/r/git/refs/heads/feature%2Fx",
        "https://github.com/o/r.git",
        "http://127.0.0.1:8765/api/v3/repos/o/r/compare/abc...def",
        "git://github.com/o/r.git",
        "ssh://git@github.com/o/r.git",
        "https://avatars.githubusercontent.com/u/1?v=4",
        "https://[::1]:8080/x#frag",
        "mailto:octocat@github.com",
    ],
)
def test_uris_pass(value: str) -> None:
    assert is_uri(value)


@pytest.mark.parametrize(
    "value",
    [
        "not a uri",
        "/repos/o/r",  # relative
        "https://github.com/o/r name",  # space
        "https://github.com/o/r/%zz",  # bad percent-escape
        "https://github.com/o/r/{sha}",  # a URI template is not a URI
        "https://git hub.com/",
        "https://github.com:80a/",
        "https://github.com/é",  # an IRI, not a URI
        "1http://github.com/",
        "https://github.com/a#b#c",
    ],
)
def test_uris_rfc3986_rejects(value: str) -> None:
    assert not is_uri(value)


@pytest.mark.parametrize(
    "value",
    [
        "octocat@github.com",
        "1+octo@users.noreply.github.com",
        "a.b-c_d@example.co.uk",
        "x@localhost.localdomain",
    ],
)
def test_emails_pass(value: str) -> None:
    assert is_email(value)


@pytest.mark.parametrize(
    "value",
    ["octocat", "@github.com", "octo@", "octo@github", "octo cat@github.com", "a..b@github.com", "o@-x.com"],
)
def test_emails_rejects(value: str) -> None:
    assert not is_email(value)


def test_the_validator_applies_the_strict_uri_check() -> None:
    body = {
        "ref": "refs/heads/main",
        "node_id": "REF_x",
        "url": "https://api.github.com/repos/o/r/git/refs/heads/main",
        "object": {
            "type": "commit",
            "sha": "a" * 40,
            "url": "https://api.github.com/repos/o/r/git/commits/{sha}",
        },
    }
    with pytest.raises(SchemaMismatch, match="uri"):
        validate_response("GET", "/repos/o/r/git/ref/heads/main", 200, body)
    body["object"]["url"] = "https://api.github.com/repos/o/r/git/commits/" + "a" * 40  # type: ignore[index]
    validate_response("GET", "/repos/o/r/git/ref/heads/main", 200, body)
