"""Static files as scripts/up.sh serves them: after collectstatic, content-hashed names with a year's
immutable caching and gzip copies; before it (or for a file added since), the unhashed file from the
source tree rather than a failing page."""

from __future__ import annotations

import gzip

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from django.utils.functional import empty
from whitenoise.middleware import WhiteNoiseMiddleware

STORAGE = "core.staticfiles.HashedWhenCollectedStorage"


def _settings(root):
    from django.conf import settings

    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": STORAGE}}
    return override_settings(
        STATIC_ROOT=str(root), STORAGES=storages, WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=False
    )


def _reset_storage():
    """staticfiles_storage is built once per process; build it again from the settings in force."""
    staticfiles_storage._wrapped = empty


@pytest.fixture
def collected(tmp_path):
    with _settings(tmp_path):
        _reset_storage()
        yield tmp_path
    _reset_storage()


def test_before_collectstatic_pages_name_the_unhashed_file(collected):
    assert staticfiles_storage.url("css/app.css") == "/static/css/app.css"


def test_after_collectstatic_names_are_hashed_and_served_compressed_for_a_year(collected):
    call_command("collectstatic", interactive=False, verbosity=0)
    _reset_storage()
    url = staticfiles_storage.url("vendor/plotly/plotly-basic.min.js")
    assert url.startswith("/static/vendor/plotly/plotly-basic.min.")
    assert url != "/static/vendor/plotly/plotly-basic.min.js"

    middleware = WhiteNoiseMiddleware(get_response=lambda request: pytest.fail(f"not served: {request.path}"))
    response = middleware(RequestFactory().get(url, HTTP_ACCEPT_ENCODING="gzip, br"))
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    assert "max-age=315360000" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    original = (collected / "vendor/plotly/plotly-basic.min.js").read_bytes()
    assert gzip.decompress(body) == original
    assert len(body) < len(original) / 2

    # The unhashed name (an old link) is still served, but may change: no long caching.
    plain = middleware(RequestFactory().get("/static/vendor/plotly/plotly-basic.min.js"))
    assert plain.status_code == 200
    assert "immutable" not in plain["Cache-Control"]


def test_a_file_added_since_collectstatic_is_named_unhashed_not_an_error(collected, caplog):
    call_command("collectstatic", interactive=False, verbosity=0)
    _reset_storage()
    assert staticfiles_storage.url("css/app.css") != "/static/css/app.css"
    assert staticfiles_storage.url("css/added-later.css") == "/static/css/added-later.css"
    assert "run manage.py collectstatic" in caplog.text
