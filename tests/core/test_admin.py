"""The Django admin shows records but cannot change what the audit chain records: a change there
would bypass the chain and could reach into any workspace. Off in production unless enabled."""

from __future__ import annotations

import importlib

import pytest
from django.test import Client
from django.urls import clear_url_caches, reverse

from core.audit import audit_verify
from core.models import Membership, Workspace
from core.roles import Role
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):
    return make_user("root", is_staff=True, is_superuser=True)


def test_the_bootstrap_admin_cannot_change_a_role_in_another_workspace(operator, acme, umbrella, mallory):
    client = Client()
    client.force_login(operator)
    membership = Membership.objects.get(workspace=umbrella, user=mallory)
    url = reverse("admin:core_membership_change", args=[membership.pk])
    assert client.get(url).status_code == 200  # looking is fine
    response = client.post(url, {"user": mallory.pk, "workspace": umbrella.pk, "role": Role.AUDITOR})
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    # Through the workspace page and its inline, neither.
    workspace_url = reverse("admin:core_workspace_change", args=[umbrella.pk])
    response = client.post(workspace_url, {"slug": "umbrella", "name": "taken over"})
    assert response.status_code == 403
    assert Workspace.objects.get(pk=umbrella.pk).name != "taken over"
    for name in ("membership", "workspace", "apitoken", "auditevent", "artifact", "invitation"):
        assert client.get(reverse(f"admin:core_{name}_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:core_membership_delete", args=[membership.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert audit_verify(workspace=umbrella).intact


@pytest.fixture
def urls_reloaded():
    import config.urls

    yield lambda: (importlib.reload(config.urls), clear_url_caches())
    importlib.reload(config.urls)
    clear_url_caches()


def test_the_admin_is_off_unless_enabled(settings, operator, urls_reloaded):
    settings.ADMIN_ENABLED = False
    urls_reloaded()
    client = Client()
    client.force_login(operator)
    assert client.get("/admin/").status_code == 404
    settings.ADMIN_ENABLED = True
    urls_reloaded()
    assert client.get("/admin/").status_code == 200


def test_production_settings_turn_the_admin_off_by_default(monkeypatch):
    import subprocess
    import sys

    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "example.org",
        "GATE_SIGNING_KEY_FILE": "/nonexistent/key",
        "PATH": "/usr/bin:/bin",
    }
    code = "import django; django.setup(); from django.conf import settings; print(settings.ADMIN_ENABLED)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
