"""Local development and the embedded one-command setup."""

from config.env import env, envbool, local_secret_key

from .base import *  # noqa: F403
from .base import STORAGES, VAR_DIR

# Django's debug pages show settings, the request's headers (a bearer token) and the database URL:
# only in an explicit developer mode (DEBUG=1), never by default, even on one's own machine.
DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY") or local_secret_key(VAR_DIR / "secret_key")

# Static files as in production once `manage.py collectstatic` has run (scripts/up.sh runs it):
# content-hashed names served with a year's caching, gzip copies beside them, from staticfiles/.
# Before any collectstatic, and in developer mode (DEBUG=1, where Django names unhashed files), the
# finders serve them straight from the source tree, so an edited stylesheet shows on reload.
STORAGES["staticfiles"] = {"BACKEND": "core.staticfiles.HashedWhenCollectedStorage"}
WHITENOISE_USE_FINDERS = True
