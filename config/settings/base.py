"""Settings shared by every environment. Every value comes from the environment, with an embedded
default that needs no server (SQLite, a file-system Celery broker, artifacts on local disk)."""

from __future__ import annotations

import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    BASE_DIR,
    env,
    envbool,
    envchoice,
    envfloat,
    envint,
    envlist,
    var_dir,
    web_workers,
)

VAR_DIR = var_dir()

DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "lineage",
    "explain",
    "privacy",
    "governance",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files answer before admission control
    "core.admission.AdmissionControlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "core.middleware.PrivateResponseMiddleware",
]

# Everything from this origin; plotly.js is served by the service itself (no CDN). Plotly sets
# inline styles on the elements it draws, hence 'unsafe-inline' for styles only; scripts stay strict.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

# The Django admin at /admin/ (read-only for audited records; see core/admin.py).
ADMIN_ENABLED = envbool("ADMIN_ENABLED", True)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'mlgov.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take SQLite's write lock up front, so concurrent writers queue on the
    # busy timeout instead of failing with "database is locked" when a read lock is upgraded.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Static files and artifacts -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"


# The dashboard's own files and the front-end libraries it serves itself (static/vendor/, copied from
# npm by scripts/vendor_js.sh: plotly.js's basic bundle, Cytoscape.js with its dagre layout).
STATICFILES_DIRS = [BASE_DIR / "static"]

ARTIFACT_ROOT = env("ARTIFACT_ROOT", str(VAR_DIR / "artifacts"))
ARTIFACT_MAX_BYTES = envint("ARTIFACT_MAX_BYTES", 2 * 1024**3)
ARTIFACT_STORAGE_BACKEND = env("ARTIFACT_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
if "s3" in ARTIFACT_STORAGE_BACKEND.lower():
    # S3-compatible storage (django-storages, `pip install -e .[s3]`); credentials come from the
    # standard AWS_* environment variables that boto3 reads itself.
    _artifact_storage_options = {
        "bucket_name": env("ARTIFACT_S3_BUCKET"),
        "endpoint_url": env("ARTIFACT_S3_ENDPOINT_URL") or None,
        "location": env("ARTIFACT_S3_PREFIX", "artifacts"),
        "file_overwrite": False,
        "default_acl": None,
    }
else:
    _artifact_storage_options = {"location": ARTIFACT_ROOT}

STORAGES = {
    "default": {"BACKEND": ARTIFACT_STORAGE_BACKEND, "OPTIONS": _artifact_storage_options},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Uploads stream into temporary files here before they are hashed and moved into the store.
FILE_UPLOAD_TEMP_DIR = env("FILE_UPLOAD_TEMP_DIR", str(VAR_DIR / "uploads"))
os.makedirs(FILE_UPLOAD_TEMP_DIR, exist_ok=True)
FILE_UPLOAD_HANDLERS = ["core.artifacts.HashingUploadHandler"]

# --- Celery -----------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
_broker_fs_root = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: messages are files in a folder that the web process and a real
    # `celery worker` process share. It needs no server and is meant for one machine.
    _broker_fs_root = type(VAR_DIR)(env("CELERY_FS_BROKER_ROOT", str(_broker_fs_root)))
    for _sub in ("queue", "control", "processed"):
        (_broker_fs_root / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_fs_root / "queue"),
        "data_folder_out": str(_broker_fs_root / "queue"),
        "control_folder": str(_broker_fs_root / "control"),
        "processed_folder": str(_broker_fs_root / "processed"),
        "store_processed": False,
    }
    _default_result_backend = f"file://{_broker_fs_root / 'results'}"
    (_broker_fs_root / "results").mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _default_result_backend = CELERY_BROKER_URL
else:
    _default_result_backend = "rpc://"
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", _default_result_backend)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = envint("CELERY_RESULT_EXPIRES", 24 * 3600)
CELERY_TASK_ACKS_LATE = True
# Tasks keep their state in the database; only tasks that say so store a result. Sending a task that
# stores none never waits on the result backend (a Redis result store that is down held each request
# that queued work for ~19 s).
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 30 * 60)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 31 * 60)
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_DEFAULT_QUEUE", "default")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Memory of worker processes: a prefork child that holds more than WORKER_MAX_MEMORY_MB after a task is
# replaced (tables cached per process are freed with it), and every worker process's address space is
# capped at WORKER_MAX_ADDRESS_SPACE_MB (default: half the machine's memory; 0 for none, e.g. on GPU
# workers, where CUDA reserves large address ranges).
WORKER_MAX_MEMORY_MB = envint("WORKER_MAX_MEMORY_MB", 4096)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = WORKER_MAX_MEMORY_MB * 1024 if WORKER_MAX_MEMORY_MB > 0 else None
WORKER_MAX_ADDRESS_SPACE_MB = envint(
    "WORKER_MAX_ADDRESS_SPACE_MB", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**21
)
# Periodic work, run by `celery -A config beat` (or a single worker started with -B, as scripts/up.sh
# does). The outbox drain is a safety net behind the drain queued at each commit; the job dispatch
# sends jobs whose start message could not reach the broker when they were asked for.
CELERY_BEAT_SCHEDULE = {
    "lineage-project-outbox": {
        "task": "lineage.project_outbox_scheduled",
        "schedule": float(envint("LINEAGE_PROJECTION_INTERVAL", 30)),
    },
    # Background work (core/work.py): send again what never reached a worker, run again what a dead
    # worker left running.
    "work-sweep": {
        "task": "core.work_sweep",
        "schedule": float(envint("WORK_SWEEP_INTERVAL", 10)),
        # A queue of its own (WORK_SWEEP_QUEUE) keeps the sweep from waiting behind a backlog of work.
        "options": {"queue": env("WORK_SWEEP_QUEUE") or env("CELERY_DEFAULT_QUEUE", "default")},
    },
    # Signed checkpoints of every audit chain that moved (see core/audit_checkpoints.py).
    "audit-checkpoints": {
        "task": "core.audit_checkpoints",
        "schedule": float(envint("AUDIT_CHECKPOINT_INTERVAL", 3600)),
    },
}
# --- Background work (core/work.py) -------------------------------------------------------------------
# Running work sends a heartbeat every WORK_HEARTBEAT_INTERVAL seconds; work silent for
# WORK_HEARTBEAT_TIMEOUT seconds lost its worker and is run again, up to WORK_MAX_ATTEMPTS starts.
# Queued work never sent (after WORK_DISPATCH_GRACE s) or sent but not started after
# WORK_REDISPATCH_AFTER s is sent again. Each kind fails past its soft time limit (seconds).
WORK_HEARTBEAT_INTERVAL = float(envint("WORK_HEARTBEAT_INTERVAL", 10))
WORK_HEARTBEAT_TIMEOUT = float(envint("WORK_HEARTBEAT_TIMEOUT", 30))
WORK_MAX_ATTEMPTS = envint("WORK_MAX_ATTEMPTS", 3)
WORK_DISPATCH_GRACE = float(envint("WORK_DISPATCH_GRACE", 30))
WORK_REDISPATCH_AFTER = float(envint("WORK_REDISPATCH_AFTER", 900))
WORK_TIME_LIMITS = {
    "default": envint("WORK_TIME_LIMIT", 30 * 60),
    "explanation": envint("WORK_TIME_LIMIT_EXPLANATION", 30 * 60),
    "fairness": envint("WORK_TIME_LIMIT_FAIRNESS", 30 * 60),
    "privacy.release": envint("WORK_TIME_LIMIT_PRIVACY_RELEASE", 30 * 60),
    "report": envint("WORK_TIME_LIMIT_REPORT", 10 * 60),
}
WORK_HARD_TIME_LIMIT_GRACE = envint("WORK_HARD_TIME_LIMIT_GRACE", 60)  # hard limit = soft + this
CELERY_BEAT_SCHEDULE_FILENAME = env("CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule"))

# --- Graph store --------------------------------------------------------------------------------------
# Unset: the lineage graph is answered by recursive SQL over the relational record.
NEO4J_URI = env("NEO4J_URI")
NEO4J_USER = env("NEO4J_USER", "neo4j")
NEO4J_PASSWORD = env("NEO4J_PASSWORD")

# --- API ------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first: its challenge makes an anonymous API request a 401, not a 403.
        "core.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: a form-encoded body (curl -d without a Content-Type) is a 415 that says so, rather
    # than a list of "required" fields that were sent. Artifact uploads set their own parsers.
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# A CSRF failure under /api/ (outside DRF's views, which answer it themselves) is a problem document.
CSRF_FAILURE_VIEW = "core.views.csrf_failure"

SPECTACULAR_SETTINGS = {
    "TITLE": "mlgov API",
    "DESCRIPTION": "Responsible-ML governance and lineage service.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "governance.models.Stage",
        "TargetStageEnum": ["staging", "production", "archived"],
        "WorkStateEnum": "core.work.WorkState",
        "RequestStateEnum": "governance.models.RequestState",
        "InvitationStateEnum": "core.models.InvitationState",
    },
}

# API tokens: how long a new token lives unless asked otherwise, and the longest allowed.
API_TOKEN_DEFAULT_DAYS = envint("API_TOKEN_DEFAULT_DAYS", 90)
API_TOKEN_MAX_DAYS = envint("API_TOKEN_MAX_DAYS", 366)

# --- Limits on what requests and workers parse -------------------------------------------------------
# YAML and Markdown documents (model cards, datasheets, policies): bytes of text, values once anchors
# and aliases are expanded, nesting depth. JSON bodies: bytes (413 past it) and nesting depth.
DOCUMENT_MAX_BYTES = envint("DOCUMENT_MAX_BYTES", 1024 * 1024)
DOCUMENT_MAX_NODES = envint("DOCUMENT_MAX_NODES", 100_000)
DOCUMENT_MAX_DEPTH = envint("DOCUMENT_MAX_DEPTH", 50)
API_MAX_JSON_BYTES = envint("API_MAX_JSON_BYTES", 64 * 1024 * 1024)
API_MAX_JSON_DEPTH = envint("API_MAX_JSON_DEPTH", 64)
# Datasets (CSV or Parquet) that jobs and DP releases read: Parquet files are checked from their
# metadata before anything is loaded; CSV is read in pieces and stopped at the limit.
DATA_MAX_ROWS = envint("DATA_MAX_ROWS", 20_000_000)
DATA_MAX_COLUMNS = envint("DATA_MAX_COLUMNS", 10_000)
DATA_MAX_CELLS = envint("DATA_MAX_CELLS", 200_000_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}

# --- Lineage ------------------------------------------------------------------------------------------
NEO4J_FLAVOR = env("NEO4J_FLAVOR", "neo4j")  # "neo4j", or "falkordb" for FalkorDB's Bolt endpoint
LINEAGE_MAX_BATCH_EVENTS = envint("LINEAGE_MAX_BATCH_EVENTS", 5000)
LINEAGE_MAX_EVENT_BYTES = envint("LINEAGE_MAX_EVENT_BYTES", 256 * 1024)
LINEAGE_MAX_DEPTH = envint("LINEAGE_MAX_DEPTH", 50)
LINEAGE_MAX_RESULT_NODES = envint("LINEAGE_MAX_RESULT_NODES", 5000)

# --- Explanations and fairness ------------------------------------------------------------------------
# Set (e.g. "gpu") to send explanation jobs to GPU workers started with `-Q gpu`; they fall back to the
# CPU for models the kernel does not support or when no CUDA device is present.
EXPLAIN_GPU_QUEUE = env("EXPLAIN_GPU_QUEUE", "")
EXPLAIN_CHUNK_ROWS = envint("EXPLAIN_CHUNK_ROWS", 50_000)  # rows per chunk task
EXPLAIN_MAX_ROWS = envint("EXPLAIN_MAX_ROWS", 5_000_000)
# Tree models on CPU workers: "auto" times shap.TreeExplainer and the compiled path algorithm (Numba,
# in parallel) on a model's first rows and keeps the faster; "shap" or "compiled" forces one.
EXPLAIN_CPU_TREESHAP = envchoice("EXPLAIN_CPU_TREESHAP", "auto", ("auto", "shap", "compiled"))
# Threads for the compiled path in each worker process (0: one per core). With a prefork worker of
# concurrency N on C cores, C // N keeps the machine from being oversubscribed.
EXPLAIN_CPU_THREADS = envint("EXPLAIN_CPU_THREADS", 0)

# --- Pickle models (operator only) --------------------------------------------------------------------
# Pickle and joblib files run code when they are loaded. Off: only skops files are accepted. On: a
# workspace enabled with `manage.py workspace_allow_pickle` may register them, and workers run them only
# in a sandboxed child process (explain/sandbox.py) with these limits per run.
MODELS_ALLOW_PICKLE = envbool("MODELS_ALLOW_PICKLE", False)
MODELS_SANDBOX_MEMORY_MB = envint("MODELS_SANDBOX_MEMORY_MB", 4096)  # address space (RLIMIT_AS)
MODELS_SANDBOX_CPU_SECONDS = envint("MODELS_SANDBOX_CPU_SECONDS", 600)  # RLIMIT_CPU
MODELS_SANDBOX_WALL_SECONDS = envint("MODELS_SANDBOX_WALL_SECONDS", 600)  # then the child is killed
MODELS_SANDBOX_OPEN_FILES = envint("MODELS_SANDBOX_OPEN_FILES", 64)  # RLIMIT_NOFILE
MODELS_SANDBOX_FILE_MB = envint("MODELS_SANDBOX_FILE_MB", 2048)  # largest file it may write (RLIMIT_FSIZE)
MODELS_SANDBOX_TMPDIR = env("MODELS_SANDBOX_TMPDIR", "")  # where its private directories go (default: TMPDIR)

# --- Gates --------------------------------------------------------------------------------------------
# Ed25519 key that signs gate decisions: base64 of the raw 32-byte private key. Unset: a key generated
# once into GATE_SIGNING_KEY_FILE (local use; production requires GATE_SIGNING_KEY).
GATE_SIGNING_KEY = env("GATE_SIGNING_KEY", "")
GATE_SIGNING_KEY_FILE = env("GATE_SIGNING_KEY_FILE", str(VAR_DIR / "gate_signing_key"))

# --- Differential privacy -----------------------------------------------------------------------------
# Releases on datasets up to this many rows are computed in the request; larger ones on a worker.
PRIVACY_INLINE_MAX_ROWS = envint("PRIVACY_INLINE_MAX_ROWS", 2_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 32 * 1024 * 1024)

# --- Web server, overload and rate limits --------------------------------------------------------------
# Admission control (core/admission.py), per web process: at most WEB_MAX_ACTIVE requests in progress,
# at most WEB_MAX_QUEUE waiting for a place, each for at most WEB_QUEUE_TIMEOUT_MS; any other request
# is answered 503 with Retry-After at once. 0 or empty: the default. Two in progress keep a process's
# Python busy while one waits on the database; more add latency rather than throughput to CPU-bound
# requests (raise it for I/O-bound ones). gunicorn.conf.py gives each worker more threads than
# active + waiting.
WEB_ADMISSION_CONTROL = envbool("WEB_ADMISSION_CONTROL", True)
WEB_MAX_ACTIVE = envint("WEB_MAX_ACTIVE", 0) or 2
WEB_MAX_QUEUE = envint("WEB_MAX_QUEUE", 0) or 4
WEB_QUEUE_TIMEOUT_MS = envint("WEB_QUEUE_TIMEOUT_MS", 0) or 20
# gunicorn's worker processes (gunicorn.conf.py), and behind nginx (core/nginx.py) the requests passed
# to them at once: 3 per sync worker by default (one running, two waiting a few milliseconds).
WEB_WORKERS = web_workers()
WEB_FRONT_MAX_CONNS = envint("WEB_FRONT_MAX_CONNS", 0) or 3 * WEB_WORKERS
WEB_FRONT_PRIORITY = envint("WEB_FRONT_PRIORITY", 19)

# The technical file (governance/techfile.py) flags a change between versions of a metric or of a
# difference between groups larger than this (absolute) as possibly a substantial modification.
TECHFILE_SUBSTANTIAL_CHANGE = envfloat("TECHFILE_SUBSTANTIAL_CHANGE", 0.02)

# The throttles' counters must be seen by every web process: Redis when CACHE_URL is set (required
# with more than one web machine), else files under VAR_DIR that every process on this machine shares.
CACHE_URL = env("CACHE_URL")
_shared_cache: dict[str, object] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
        "OPTIONS": {"MAX_ENTRIES": 5000},
    }
)
CACHES = {"default": _shared_cache}

# Requests a minute per API token (per user for session-authenticated calls); 0 turns it off.
API_RATE_LIMIT = envint("API_RATE_LIMIT", 1200)

# Sign-in throttling (core/login.py): this many failures for a username within the window (or, from
# one client address, LOGIN_ADDRESS_FAILURE_LIMIT) pause sign-ins for LOGIN_LOCKOUT seconds.
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = envint("LOGIN_ADDRESS_FAILURE_LIMIT", 20)
LOGIN_FAILURE_WINDOW = envint("LOGIN_FAILURE_WINDOW", 15 * 60)
LOGIN_LOCKOUT = envint("LOGIN_LOCKOUT", 15 * 60)
# Behind a proxy every client shares its address: name the header it sets to the client's address
# (e.g. HTTP_X_FORWARDED_FOR; the last address in it counts).
CLIENT_IP_HEADER = env("CLIENT_IP_HEADER")
AUTHENTICATION_BACKENDS = ["core.login.ThrottledModelBackend"]

# Invitations (core/invitation_links.py): a link works once, for this many days.
INVITATION_LINK_DAYS = envint("INVITATION_LINK_DAYS", 7)
# The service's address as people reach it (e.g. https://mlgov.example.org), for links sent by e-mail;
# empty: the address the admin's request came to.
PUBLIC_URL = env("PUBLIC_URL")
# E-mail for invitation links: SMTP when EMAIL_HOST is set, else written to the web process's log.
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "mlgov@localhost")
# Seconds an SMTP exchange may take: the invitation is answered from a web thread (a hung server
# would hold it; past this the link is still in the answer, with "mailed": false).
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)

# Single sign-on with OpenID Connect (core/sso.py; docs/guide-admin.md#single-sign-on): on when
# OIDC_RP_CLIENT_ID is set. The provider's endpoints are named, not discovered (no request to the
# provider at start-up); ID tokens are checked for signature (the provider's JWKS), algorithm, nonce,
# issuer, audience and expiry, and the code exchange uses PKCE.
OIDC_RP_CLIENT_ID = env("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env("OIDC_RP_CLIENT_SECRET")
OIDC_ISSUER = env("OIDC_ISSUER")
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_OP_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = envint("OIDC_TIMEOUT", 10)
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", "your organisation")
# The claim that lists the person's groups, and which group gives which role in which workspace:
# "group=workspace:role" entries, comma-separated. In the workspaces it names, the mapping decides the
# person's role at every sign-in (the most capable role among their groups; none: not a member).
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", "groups")
OIDC_GROUP_ROLES = env("OIDC_GROUP_ROLES")
# Sign-in with a local password (off: only single sign-on; accounts made with user_create cannot sign in).
PASSWORD_SIGN_IN = envbool("PASSWORD_SIGN_IN", True)
if OIDC_ENABLED:
    _missing = [
        name
        for name in (
            "OIDC_RP_CLIENT_SECRET",
            "OIDC_ISSUER",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
            "OIDC_OP_JWKS_ENDPOINT",
        )
        if not globals()[name]
    ]
    if _missing:
        raise ImproperlyConfigured(f"single sign-on (OIDC_RP_CLIENT_ID) also needs {', '.join(_missing)}")
    AUTHENTICATION_BACKENDS = [
        *(AUTHENTICATION_BACKENDS if PASSWORD_SIGN_IN else []),
        "core.sso.OrganisationBackend",
    ]

# Record-keeping (governance/techfile_records.py; AI Act Articles 12, 18 and 19): how long audit logs
# and technical files with their evidence are kept. Nothing in the audit table is deleted sooner; the
# technical file states both, and lists a period under the law's minimum (183 days, 10 years) as missing.
AUDIT_LOG_RETENTION_DAYS = envint("AUDIT_LOG_RETENTION_DAYS", 3650)
TECHFILE_RETENTION_YEARS = envint("TECHFILE_RETENTION_YEARS", 10)
# The most events one audit-log export holds (core/audit_export.py); longer periods are exported in parts.
AUDIT_EXPORT_MAX_EVENTS = envint("AUDIT_EXPORT_MAX_EVENTS", 200_000)
