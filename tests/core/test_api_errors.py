"""Errors under /api/ are problem documents, whatever answers them: an address that names nothing,
with or without a session, and a session's write without its CSRF token outside DRF's views."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from config.urls import urlpatterns as service_urlpatterns
from tests.factories import make_user


def plain_write(request):
    """A plain Django view under /api/: Django's CSRF check guards it, not DRF's."""
    return HttpResponse("written")


urlpatterns = [path("api/v1/plain-write", plain_write), *service_urlpatterns]


@pytest.fixture
def signed_in(db):
    """A browser that signed in and sends its session cookie, but never the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("ada"))
    return client


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_an_unknown_api_address_is_a_404_problem_even_to_a_session_without_csrf(signed_in, method):
    body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}
    response = getattr(signed_in, method)("/api/v1/no-such-thing", **body)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Not found"
    assert response.json()["instance"] == "/api/v1/no-such-thing"


@pytest.mark.urls(__name__)
def test_a_csrf_failure_under_api_is_a_problem_naming_it(signed_in):
    response = signed_in.post("/api/v1/plain-write", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Forbidden"
    assert body["detail"].startswith("CSRF Failed: CSRF cookie not set.")
    assert "X-CSRFToken" in body["detail"]
    assert body["instance"] == "/api/v1/plain-write"


def test_a_csrf_failure_on_a_page_is_still_the_html_page(signed_in):
    response = signed_in.post("/accounts/logout/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
