"""Static files as the dashboard served them before the fast-pages change, for benchmarks/request_page.py's
baseline: the full plotly.js build (4.85 MB, from the plotly Python package) under the name the page
now asks for, unhashed, uncompressed and with `Cache-Control: max-age=0`."""

import os

from config.settings.local import *  # noqa: F403
from config.settings.local import STATICFILES_DIRS, STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
STATIC_ROOT = None  # nothing collected: every file from the finders, as the source tree holds it
STATICFILES_DIRS = [os.environ["BENCH_BEFORE_STATIC"], *STATICFILES_DIRS]
WHITENOISE_USE_FINDERS = True
WHITENOISE_MAX_AGE = 0
