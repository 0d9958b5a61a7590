"""Sign-in throttling and per-token API rate limits. The test settings turn both off; each test here
turns on what it measures, on a cache of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse

from core.login import login_failure_record
from tests.conftest import session
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
WRONG = "not-the-password"


@pytest.fixture
def throttled(settings, tmp_path):
    """The sign-in throttle and rate limit off until a test sets them, on an empty cache."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}
    }
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_ADDRESS_FAILURE_LIMIT = 5, 20
    settings.LOGIN_FAILURE_WINDOW, settings.LOGIN_LOCKOUT = 60, 60
    settings.API_RATE_LIMIT = 0
    yield settings
    cache.clear()


def sign_in(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_five_wrong_passwords_lock_the_username_out_even_with_the_right_one(throttled, alice):
    throttled.LOGIN_LOCKOUT = 1
    client = Client()
    for _ in range(4):
        response = sign_in(client, "alice", WRONG)
        assert response.status_code == 200
        assert b"did not match" in response.content
    fifth = sign_in(client, "alice", WRONG)
    assert fifth.status_code == 429
    assert b"Too many failed sign-ins" in fifth.content

    refused = sign_in(client, "alice", PASSWORD)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert b"Too many failed sign-ins" in refused.content
    assert b"try again in 1 second." in refused.content
    assert not signed_in(client)

    time.sleep(1.1)  # the lockout passes
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_successful_sign_in_clears_the_usernames_failures(throttled, alice):
    for _ in range(4):
        assert sign_in(Client(), "alice", WRONG).status_code == 200
    assert sign_in(Client(), "alice", PASSWORD).status_code == 302
    for _ in range(4):
        assert sign_in(Client(), "alice", WRONG).status_code == 200
    assert sign_in(Client(), "alice", WRONG).status_code == 429


def test_failures_from_one_address_lock_that_address_out_for_every_username(throttled, alice, bob, carol):
    throttled.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    attacker, colleague = Client(REMOTE_ADDR="198.51.100.7"), Client(REMOTE_ADDR="198.51.100.8")
    assert sign_in(attacker, "alice", WRONG).status_code == 200
    assert sign_in(attacker, "bob", WRONG).status_code == 200
    assert sign_in(attacker, "mallory", WRONG).status_code == 429  # a third username, the third failure
    assert sign_in(attacker, "carol", PASSWORD).status_code == 429
    assert sign_in(colleague, "carol", PASSWORD).status_code == 302


def test_behind_a_proxy_the_address_comes_from_the_header_it_sets(throttled, alice, bob):
    throttled.LOGIN_ADDRESS_FAILURE_LIMIT = 2
    throttled.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    # The proxy appends the address it saw; what the client wrote before it proves nothing.
    attacker = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9")
    other = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.10")
    assert sign_in(attacker, "alice", WRONG).status_code == 200
    assert sign_in(attacker, "alice", WRONG).status_code == 429
    assert sign_in(other, "bob", PASSWORD).status_code == 302


def test_a_locked_out_username_cannot_sign_in_anywhere_else(throttled, ada):
    ada.is_staff = True
    ada.save()
    for _ in range(5):
        sign_in(Client(), "ada", WRONG)
    request = RequestFactory().post("/")
    assert authenticate(request, username="ada", password=PASSWORD) is None
    admin = Client()
    admin.post("/admin/login/", {"username": "ada", "password": PASSWORD})
    assert admin.get("/admin/").status_code == 302  # still asked to sign in


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["files", "redis"])
def test_a_lockout_is_seen_by_every_web_process(throttled, tmp_path, backend):
    """The embedded default (files under VAR_DIR) and Redis (CACHE_URL), as base settings pick them."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "CACHE_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local", MLGOV_VAR_DIR=str(tmp_path), PYTHONPATH=str(ROOT)
    )
    if backend == "redis":
        if not os.environ.get("CACHE_URL", "").startswith("redis"):
            pytest.skip("set CACHE_URL=redis://... to test the Redis cache")
        env["CACHE_URL"] = os.environ["CACHE_URL"]
        location = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env["CACHE_URL"]}
    else:
        location = {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    throttled.CACHES = {"default": location}
    username = f"erin-{time.monotonic_ns()}"
    for _ in range(5):
        login_failure_record(username=username, address="")

    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from core.login import login_lockout_remaining as left; "
            f"print(left(username={username.upper()!r}, address=''))",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert other_process.returncode == 0, other_process.stderr
    assert 0 < int(other_process.stdout) <= 60


def one_window_ahead() -> None:
    """Wait for the next minute if this one is about to end (the limits count per minute)."""
    into = time.time() % 60
    if into > 57:
        time.sleep(60.05 - into)


def test_a_token_over_its_rate_is_refused_while_another_token_is_not(throttled, acme, alice, as_token):
    throttled.API_RATE_LIMIT = 3
    first, second = (as_token(alice, acme, ["workspace:read"]) for _ in range(2))
    one_window_ahead()
    assert [first.get(reverse("me")).status_code for _ in range(3)] == [200, 200, 200]
    refused = first.get(reverse("me"))
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert refused.json()["title"] == "Too many requests"
    assert second.get(reverse("me")).status_code == 200


def test_session_calls_are_limited_per_user(throttled, acme, alice, bob):
    throttled.API_RATE_LIMIT = 2
    one_window_ahead()
    assert [session(alice).get(reverse("me")).status_code for _ in range(2)] == [200, 200]
    assert session(alice).get(reverse("me")).status_code == 429  # another session, the same user
    assert session(bob).get(reverse("me")).status_code == 200
    assert [Client().get("/api/v1/health").status_code for _ in range(3)] == [200, 200, 200]
