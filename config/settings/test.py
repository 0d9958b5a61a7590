"""Settings for the test suite: the same as local, with speedups that do not change behaviour."""

from config.env import env, envbool

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR

DEBUG = False
SECRET_KEY = env("SECRET_KEY", "test-only-secret-key-not-used-anywhere-else-0123456789abcdefghij")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not SQLite's shared in-memory database: concurrency tests and real worker processes
    # must open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

# Per-process counters, empty at each run; the rate limits and the sign-in throttle are off except in
# the tests that measure them (tests/core/test_throttling.py sets its own), so that the suite's many
# requests from one address and with reused token ids do not trip them.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
API_RATE_LIMIT = 0
LOGIN_FAILURE_LIMIT = LOGIN_ADDRESS_FAILURE_LIMIT = 0
# Admission control likewise (tests/core/test_admission.py switches it on): the browser tests' live
# server is one process from which a page loads several requests at once, and on a busy machine the
# 20 ms a request may wait for a place was not enough (503s on the explorer's panel).
WEB_ADMISSION_CONTROL = envbool("WEB_ADMISSION_CONTROL", False)
