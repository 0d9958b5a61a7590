"""Production: secrets and hosts are required from the environment; `check --deploy` is clean."""

import base64

from django.core.exceptions import ImproperlyConfigured

from config.env import env, envbool, envint

from .base import *  # noqa: F403

SECRET_KEY = env("SECRET_KEY")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set (at least 50 random characters) when DJANGO_ENV=production"
    )
if not env("ALLOWED_HOSTS"):
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DJANGO_ENV=production")
# Every web process and worker must sign with the same key: not one generated per machine.
if GATE_SIGNING_KEY:  # noqa: F405
    try:
        _key_length = len(base64.b64decode(GATE_SIGNING_KEY, validate=True))  # noqa: F405
    except ValueError:
        _key_length = -1
    if _key_length != 32:
        raise ImproperlyConfigured("GATE_SIGNING_KEY must be the base64 of a raw 32-byte Ed25519 private key")
elif not env("GATE_SIGNING_KEY_FILE"):
    raise ImproperlyConfigured(
        "GATE_SIGNING_KEY must be set when DJANGO_ENV=production (or GATE_SIGNING_KEY_FILE, naming a "
        "key file every process shares)"
    )

DEBUG = False
ADMIN_ENABLED = envbool("ADMIN_ENABLED", False)
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]  # noqa: F405

STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
}

# Behind a TLS-terminating proxy, set SECURE_PROXY_SSL_HEADER_NAME (e.g. HTTP_X_FORWARDED_PROTO).
if env("SECURE_PROXY_SSL_HEADER_NAME"):
    SECURE_PROXY_SSL_HEADER = (env("SECURE_PROXY_SSL_HEADER_NAME"), "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
