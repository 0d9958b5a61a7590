"""Static files as scripts/up.sh serves them: after collectstatic, content-hashed names with a year's
immutable caching and gzip copies; before it (or for a file added since), the unhashed file from the
source tree rather than a failing page."""

from __future__ import annotations

import gzip
import json

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.files.storage import storages
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
    """staticfiles_storage is built once per process (and kept by django's storages); build it again
    from the settings in force and the manifest on disk."""
    storages._storages.pop("staticfiles", None)
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
    manifest = collected / "staticfiles.json"
    document = json.loads(manifest.read_text())
    del document["paths"]["css/app.css"]  # as if app.css had been added after collectstatic
    manifest.write_text(json.dumps(document))
    _reset_storage()
    assert staticfiles_storage.url("js/charts.js") != "/static/js/charts.js"
    assert staticfiles_storage.url("css/app.css") == "/static/css/app.css"
    assert staticfiles_storage.url("css/app.css") == "/static/css/app.css"
    warnings = [r.getMessage() for r in caplog.records if "collectstatic" in r.getMessage()]
    assert warnings == ["css/app.css is not in staticfiles.json; run manage.py collectstatic"]


def test_names_of_files_that_exist_nowhere_pass_without_a_warning(collected, caplog):
    """WhiteNoise asks for the files a minified script's source map names; there are none."""
    call_command("collectstatic", interactive=False, verbosity=0)
    _reset_storage()
    assert staticfiles_storage.url("vendor/plotly/plotly-basic.js") == "/static/vendor/plotly/plotly-basic.js"
    assert "collectstatic" not in caplog.text
