"""Single sign-on against a real OpenID Connect provider: django-oauth-toolkit's, started here as a
second Django process with its own database and RSA signing key (tests/oidc_provider/). The
service runs as the live test server; a requests session plays the browser through the redirects,
the provider's sign-in form and back. Covered: the redirect and code exchange (with PKCE), the
user made on first sign-in, groups mapped to a workspace role (and taken away with the group), and
refusals of a wrong nonce, a token signed with another key and a token from another issuer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.models import AuditEvent, ExternalIdentity, Membership
from core.sso import group_roles
from tests.factories import make_user, make_workspace

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID, CLIENT_SECRET = "mlgov-test", "a-client-secret-for-the-test-only-0123456789"
PERSON, PERSON_PASSWORD = "nadia", "nadia-provider-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class Provider:
    """The provider process and a way to run Django code in its database."""

    def __init__(self, directory: Path, port: int):
        self.directory, self.port = directory, port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
            "OIDC_PROVIDER_DIR": str(directory),
            "PYTHONPATH": str(ROOT),
        }
        self.process: subprocess.Popen | None = None

    def django(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def shell(self, code: str) -> str:
        return self.django("shell", "-c", code)

    def start(self) -> None:
        log = (self.directory / "provider.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/o/.well-known/openid-configuration", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(
            "the OIDC provider did not start: " + (self.directory / "provider.log").read_text()
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def provider(tmp_path, live_server):
    (tmp_path / "signing.pem").write_text(_pem())
    running = Provider(tmp_path, _free_port())
    running.django("migrate", "-v0")
    running.shell(
        "from django.contrib.auth.models import Group, User\n"
        "from oauth2_provider.models import Application\n"
        f"user = User.objects.create_user({PERSON!r}, 'nadia@example.org', {PERSON_PASSWORD!r})\n"
        "user.groups.add(Group.objects.create(name='ml-reviewers'))\n"
        f"Application.objects.create(name='mlgov', client_id={CLIENT_ID!r}, client_secret={CLIENT_SECRET!r},"
        " client_type='confidential', authorization_grant_type='authorization-code',"
        f" redirect_uris='{live_server.url}/oidc/callback/', algorithm='RS256', skip_authorization=True)\n"
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def sso(settings, provider):
    """The service configured as an operator would, from the provider's discovery document."""
    discovery = requests.get(f"{provider.url}/o/.well-known/openid-configuration", timeout=10).json()
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.OIDC_ISSUER = discovery["issuer"]
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = discovery["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = discovery["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = discovery["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = discovery["jwks_uri"]
    settings.OIDC_GROUP_ROLES = "ml-reviewers=acme:compliance_reviewer, ml-admins=acme:admin"
    settings.AUTHENTICATION_BACKENDS = ["core.login.ThrottledModelBackend", "core.sso.OrganisationBackend"]
    return discovery


def _sign_in(live_server, provider, tamper=None) -> tuple[requests.Session, requests.Response]:
    """Click "Sign in with…", sign in at the provider, come back. `tamper` may rewrite the
    authorisation request the service sent the browser to. Returns the session and the service's
    answer to the provider's redirect back."""
    browser = requests.Session()
    start = browser.get(f"{live_server.url}/oidc/authenticate/?next=/w/acme/", allow_redirects=False)
    assert start.status_code == 302
    authorise = start.headers["Location"]
    query = parse_qs(urlparse(authorise).query)
    assert {"state", "nonce", "code_challenge"} <= set(query)
    assert query["code_challenge_method"] == ["S256"]
    if tamper is not None:
        authorise = tamper(authorise)
    to_login = browser.get(authorise, allow_redirects=False)
    assert to_login.status_code == 302 and "/login/" in to_login.headers["Location"]  # noqa: PT018
    login_next = parse_qs(urlparse(to_login.headers["Location"]).query)["next"][0]
    signed_in = browser.post(
        f"{provider.url}/login/",
        {"username": PERSON, "password": PERSON_PASSWORD, "next": login_next},
        allow_redirects=False,
    )
    assert signed_in.status_code == 302
    back = browser.get(provider.url + signed_in.headers["Location"], allow_redirects=False)
    assert back.status_code == 302
    assert back.headers["Location"].startswith(f"{live_server.url}/oidc/callback/?code=")
    return browser, browser.get(back.headers["Location"], allow_redirects=False)


def _signed_in(browser: requests.Session, live_server) -> bool:
    return browser.get(f"{live_server.url}/w/acme/", allow_redirects=False).status_code == 200


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_person_signs_in_through_the_provider_and_their_group_gives_the_role(sso, provider, live_server):
    workspace = make_workspace("acme", admin=make_user("admin"))
    make_user("nadia")  # a local account with the same name is not taken over
    browser, answer = _sign_in(live_server, provider)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/w/acme/"
    assert _signed_in(browser, live_server)
    identity = ExternalIdentity.objects.select_related("user").get(issuer=sso["issuer"])
    assert identity.user.username == "nadia-2"
    assert identity.user.email == "nadia@example.org"
    assert not identity.user.has_usable_password()
    assert Membership.objects.get(workspace=workspace, user=identity.user).role == "compliance_reviewer"
    event = AuditEvent.objects.filter(workspace=workspace, action="membership.create").latest("seq")
    assert event.payload == {"role": "compliance_reviewer", "via": "oidc", "groups": ["ml-reviewers"]}

    # The same person again: the same account. Out of the group at the provider: out of the workspace.
    provider.shell(
        f"from django.contrib.auth.models import User\nUser.objects.get(username={PERSON!r}).groups.clear()"
    )
    browser, answer = _sign_in(live_server, provider)
    assert answer.status_code == 302
    assert ExternalIdentity.objects.count() == 1
    assert not Membership.objects.filter(workspace=workspace, user=identity.user).exists()
    assert (
        AuditEvent.objects.filter(workspace=workspace, action="membership.delete")
        .latest("seq")
        .payload["via"]
        == "oidc"
    )


def _with_query(url: str, **changes: str) -> str:
    parts = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunparse(parts._replace(query=urlencode(query)))


def _refused(answer: requests.Response, browser: requests.Session, live_server) -> None:
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/accounts/login/"
    assert not _signed_in(browser, live_server)
    page = browser.get(f"{live_server.url}/accounts/login/")
    assert "Single sign-on failed" in page.text
    assert not ExternalIdentity.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_token_with_a_wrong_nonce_is_refused(sso, provider, live_server):
    make_workspace("acme", admin=make_user("admin"))
    browser, answer = _sign_in(
        live_server, provider, tamper=lambda url: _with_query(url, nonce="replayed-nonce")
    )
    _refused(answer, browser, live_server)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_token_signed_with_another_key_or_from_another_issuer_is_refused(
    sso, provider, live_server, settings
):
    make_workspace("acme", admin=make_user("admin"))
    # The service is told the provider's keys are another key with the same key id: the provider's
    # genuine signature must then fail to verify.
    from jwcrypto import jwk

    genuine = requests.get(sso["jwks_uri"], timeout=10).json()["keys"][0]
    other = jwk.JWK.from_pem(_pem().encode())
    document = json.dumps(
        {"keys": [{**json.loads(other.export_public()), "kid": genuine["kid"], "alg": "RS256"}]}
    )

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.OIDC_OP_JWKS_ENDPOINT = f"http://127.0.0.1:{server.server_port}/jwks"
        browser, answer = _sign_in(live_server, provider)
        _refused(answer, browser, live_server)
    finally:
        server.shutdown()
    settings.OIDC_OP_JWKS_ENDPOINT = sso["jwks_uri"]
    settings.OIDC_ISSUER = "https://idp.elsewhere.example"
    browser, answer = _sign_in(live_server, provider)
    _refused(answer, browser, live_server)


def test_the_group_mapping_is_checked_and_the_most_capable_role_wins(settings):
    settings.OIDC_GROUP_ROLES = "a=acme:auditor, b=acme:admin, c=beta:ci"
    from core.sso import roles_from_groups

    assert roles_from_groups(["a", "b"]) == {"acme": "admin", "beta": None}
    assert roles_from_groups(["a", "zzz"]) == {"acme": "auditor", "beta": None}
    from django.core.exceptions import ImproperlyConfigured

    for wrong in ("a=acme", "a=acme:wizard", "=acme:admin"):
        with pytest.raises(ImproperlyConfigured, match="OIDC_GROUP_ROLES"):
            group_roles(wrong)


@pytest.mark.django_db
def test_the_sign_in_page_offers_the_provider_and_can_leave_only_it(settings, client):
    assert b'id="sso"' not in client.get("/accounts/login/").content  # off unless configured
    assert client.get("/oidc/authenticate/").status_code == 404
    settings.OIDC_ENABLED, settings.OIDC_PROVIDER_NAME = True, "Acme ID"
    page = client.get("/accounts/login/?next=/w/acme/").content.decode()
    assert 'href="/oidc/authenticate/?next=/w/acme/"' in page
    assert "Sign in with Acme ID" in page
    assert 'name="password"' in page
    # Single sign-on only: no password form, and a password posted anyway signs no one in.
    settings.PASSWORD_SIGN_IN = False
    settings.AUTHENTICATION_BACKENDS = ["core.sso.OrganisationBackend"]
    assert 'name="password"' not in client.get("/accounts/login/").content.decode()
    make_user("omar")
    client.post("/accounts/login/", {"username": "omar", "password": "correct-horse-battery-staple"})
    assert client.get("/", follow=False).status_code == 302  # still signed out


@pytest.mark.django_db
def test_an_address_the_provider_did_not_verify_is_not_put_on_the_account(settings):
    """Invitations by e-mail are matched by the address on an account: an unverified address typed at
    the provider must not let its holder take someone else's invitation."""
    from core.sso import OrganisationBackend

    settings.OIDC_GROUP_ROLES = ""
    backend = OrganisationBackend()
    claims = {
        "iss": "https://idp.example",
        "sub": "s-1",
        "preferred_username": "eve",
        "email": "ada@example.org",
    }
    eve = backend.create_user({**claims, "email_verified": False})
    assert eve.email == ""
    backend.update_user(eve, {**claims, "email_verified": "true"})  # a string is not a verification
    eve.refresh_from_db()
    assert eve.email == ""
    backend.update_user(eve, {**claims, "email": "eve@example.org", "email_verified": True})
    eve.refresh_from_db()
    assert eve.email == "eve@example.org"
