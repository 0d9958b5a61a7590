"""Local development and the embedded one-command setup."""

from config.env import env, envbool, local_secret_key

from .base import *  # noqa: F403
from .base import VAR_DIR

# Django's debug pages show settings, the request's headers (a bearer token) and the database URL:
# only in an explicit developer mode (DEBUG=1), never by default, even on one's own machine.
DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY") or local_secret_key(VAR_DIR / "secret_key")
# Serve static files straight from the apps while developing; no collectstatic needed.
WHITENOISE_USE_FINDERS = True
