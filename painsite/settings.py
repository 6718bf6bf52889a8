"""PainSite settings: one file, every value from the environment, embedded defaults.

With no environment at all a fresh clone runs on SQLite, an embedded SQLite broker and local
media under ./var/. Production sets PAINSITE_ENV=production plus plain URLs for PostgreSQL and
Redis/RabbitMQ (see README.md and docs/deploy.md).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envfloat(name: str, default: str) -> float:
    return float(os.getenv(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("PAINSITE_VAR_DIR", BASE_DIR / "var"))

PRODUCTION = os.getenv("PAINSITE_ENV", "development") == "production"
# Django's debug pages list every route and setting: shown only when asked for (DEBUG=1), never
# by default, development included (`make run` serves the normal 404 and 500 pages).
DEBUG = envbool("DEBUG", "False")


def installation_secret_key(var_dir: Path) -> str:
    """This installation's development key: made once in var/secret_key (mode 0600), then reused.

    A constant in the repository would be the same key on every copy, so anyone could forge
    sessions and signed values of a development installation that is reachable from outside.
    """
    path = var_dir / "secret_key"
    var_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when PAINSITE_ENV=production")
    SECRET_KEY = installation_secret_key(VAR_DIR)

# Old keys still accepted for signed values while a rotation is under way (README.md).
SECRET_KEY_FALLBACKS = envlist("SECRET_KEY_FALLBACKS", "")

# Keys the FHIR export's practitioner pseudonyms (modeling/fhir.py). Set it once in production:
# by default it is SECRET_KEY, and rotating that would give every practitioner a new pseudonym.
PAINSITE_FHIR_PSEUDONYM_KEY = os.getenv("PAINSITE_FHIR_PSEUDONYM_KEY", "") or SECRET_KEY

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "axes",
    "painsite.core",
    "annotation",
    "modeling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "painsite.core.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "painsite.core.middleware.ContentSecurityPolicyMiddleware",
    "painsite.core.middleware.DatabaseUnavailableMiddleware",
    "painsite.core.middleware.StorageUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "painsite.urls"
WSGI_APPLICATION = "painsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "painsite.core.context_processors.roles",
                "modeling.context_processors.random_init_production",
            ],
        },
    },
]

# Database: SQLite by default. The web process and the worker write at the same time (labels,
# progress, heartbeats), so SQLite runs in WAL mode with a busy timeout and takes its write lock
# at the start of each transaction: neither side ever sees "database is locked".
SQLITE_PATH = VAR_DIR / "painsite.sqlite3"
DATABASE_URL = os.getenv("DATABASE_URL", f"sqlite:///{SQLITE_PATH}")
# A server database keeps each web process's connection open for DATABASE_CONN_MAX_AGE seconds
# instead of opening one per request (a labeling step spent more CPU connecting than working).
# CONN_HEALTH_CHECKS (below) tests a kept connection at the start of each request, so one broken
# by a database restart is replaced there instead of failing the request.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "0" if DATABASE_URL.startswith("sqlite") else "600"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so worker subprocesses and live-server threads share the test
    # database; one per test process, so two test runs on one machine never collide.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / f"test-painsite-{os.getpid()}.sqlite3")
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Per-process memory by default; several web processes should share one (redis://...), so a
# comparison computed by one is not recomputed by the next.
CACHE_URL = os.getenv("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL.startswith(("redis://", "rediss://"))
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = ["painsite.core.auth.LockoutBackend", "painsite.core.auth.RolePermissionBackend"]
# The labeling queue reserves the image it hands a clinician for this long, so clinicians
# labeling at the same time get different images; labeling or skipping it releases it sooner.
PAINSITE_QUEUE_RESERVATION_SECONDS = envint("PAINSITE_QUEUE_RESERVATION_SECONDS", "120")
if PAINSITE_QUEUE_RESERVATION_SECONDS < 0:
    raise ImproperlyConfigured("PAINSITE_QUEUE_RESERVATION_SECONDS must be 0 (no reservation) or more seconds")
PAINSITE_LOGIN_FAILURE_LIMIT = envint("PAINSITE_LOGIN_FAILURE_LIMIT", "5")
PAINSITE_LOGIN_LOCKOUT_SECONDS = envint("PAINSITE_LOGIN_LOCKOUT_SECONDS", "900")
# django-axes: failures count per (username, client address) pair, so failures from elsewhere
# cannot lock a clinician out of their own machine; records expire after the cool-off, and each
# failure during a lockout extends it.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = PAINSITE_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=PAINSITE_LOGIN_LOCKOUT_SECONDS)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "painsite.core.auth.keep_response"
AXES_CLIENT_IP_CALLABLE = "painsite.core.auth.client_address"
AXES_VERBOSE = False

# Sign-in with the hospital directory (LDAP): off unless PAINSITE_LDAP_SERVER_URI is set. Then the
# directory is asked first, its groups decide each person's role (PAINSITE_LDAP_ROLE_GROUPS), and
# local accounts such as the first admin still sign in with their own password. The lockout above
# covers directory sign-ins too. Every variable: docs/deploy.md; needs requirements-ldap.txt.
if os.getenv("PAINSITE_LDAP_SERVER_URI", "").strip():
    from painsite.core.directory_config import directory_settings

    globals().update(directory_settings(os.environ))
    AUTHENTICATION_BACKENDS = [
        "painsite.core.auth.LockoutBackend",
        "painsite.core.directory.DirectoryBackend",
        "painsite.core.auth.RolePermissionBackend",
    ]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_TZ = True

# Languages (docs/deploy.md): each visitor gets the language of their browser (Accept-Language)
# or the one they chose with the selector on every page; a signed-in user's choice is saved to
# their account and applied at each sign-in (painsite/core/languages.py). PAINSITE_LANGUAGE is the
# site's default: what a browser that asks for none of these languages gets, and what background
# workers write stored messages in.
USE_I18N = True
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LANGUAGE_CODE = os.getenv("PAINSITE_LANGUAGE", "en")
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(
        f"PAINSITE_LANGUAGE={LANGUAGE_CODE!r}; valid options: {', '.join(code for code, _ in LANGUAGES)}"
    )
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("PAINSITE_STATIC_ROOT", VAR_DIR / "static"))
# Development serves static files from the source folders, DEBUG or not.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    # WhiteNoise serves from finders in development but warns when this folder is missing.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Face images are protected health information: MEDIA_ROOT is never mapped to a URL. Files
# leave the server only through annotation's authenticated image view.
MEDIA_ROOT = Path(os.getenv("PAINSITE_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = None
PAINSITE_DATA_DIR = Path(os.getenv("PAINSITE_DATA_DIR", VAR_DIR / "data"))

STORAGE_BACKEND = os.getenv("PAINSITE_STORAGE", "local")
if STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.getenv("PAINSITE_S3_BUCKET", ""),
            "endpoint_url": os.getenv("PAINSITE_S3_ENDPOINT_URL") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
elif STORAGE_BACKEND == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None},
    }
else:
    raise ImproperlyConfigured(f"PAINSITE_STORAGE must be 'local' or 's3', not {STORAGE_BACKEND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Uploads: bytes and pixels are capped before anything is stored (see annotation/intake.py).
PAINSITE_MAX_UPLOAD_BYTES = envint("PAINSITE_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024))
PAINSITE_MAX_IMAGE_PIXELS = envint("PAINSITE_MAX_IMAGE_PIXELS", str(40_000_000))
PAINSITE_MAX_ARCHIVE_BYTES = envint("PAINSITE_MAX_ARCHIVE_BYTES", str(2 * 1024 * 1024 * 1024))
# Archives up to this size import during the request; larger ones go to a background task.
PAINSITE_IMPORT_INLINE_MAX_ROWS = envint("PAINSITE_IMPORT_INLINE_MAX_ROWS", "25")
PAINSITE_IMPORT_INLINE_MAX_BYTES = envint("PAINSITE_IMPORT_INLINE_MAX_BYTES", str(25 * 1024 * 1024))
# Threads that decode, re-encode and search faces for the next rows of a bulk import while its own
# thread stores them in turn (annotation/bulk_import.py); 1 does everything on that one thread.
# Default: the CPUs this process may use.
PAINSITE_IMPORT_WORKERS = envint(
    "PAINSITE_IMPORT_WORKERS",
    str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1),
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Pain levels: "none:0,mild:1-3,moderate:4-6,severe:7-10".
PAINSITE_PAIN_LEVELS = os.getenv("PAINSITE_PAIN_LEVELS", "none:0,mild:1-3,moderate:4-6,severe:7-10")
PAINSITE_SEVERE_ALERT_THRESHOLD = envfloat("PAINSITE_SEVERE_ALERT_THRESHOLD", "0.5")
# Assessment: /monitor/ assesses a camera frame every PAINSITE_MONITOR_INTERVAL_SECONDS and raises
# its alert when severe pain persists over PAINSITE_MONITOR_ALERT_CONSECUTIVE assessments in a row.
# A web process keeps PAINSITE_INFERENCE_CACHE_VERSIONS model versions loaded (~0.5 GB each).
PAINSITE_MONITOR_INTERVAL_SECONDS = envfloat("PAINSITE_MONITOR_INTERVAL_SECONDS", "5")
PAINSITE_MONITOR_ALERT_CONSECUTIVE = envint("PAINSITE_MONITOR_ALERT_CONSECUTIVE", "3")
PAINSITE_INFERENCE_DEVICE = os.getenv("PAINSITE_INFERENCE_DEVICE", "auto")
PAINSITE_INFERENCE_CACHE_VERSIONS = envint("PAINSITE_INFERENCE_CACHE_VERSIONS", "2")
PAINSITE_VGG16_WEIGHTS = os.getenv("PAINSITE_VGG16_WEIGHTS", "")
# Which kernels compute the frozen VGG16 features in head-mode training (docs/ml.md, "Feature
# paths"): auto (bf16 where the CPU has it natively, CUDA on a GPU, int8 through ONNX Runtime
# where a trial on the worker finds it faster, else float32), float32, bf16 or int8-onnxruntime.
PAINSITE_FEATURE_PATH = os.getenv("PAINSITE_FEATURE_PATH", "auto")
if PAINSITE_FEATURE_PATH not in ("auto", "float32", "bf16", "int8-onnxruntime"):
    raise ImproperlyConfigured(
        f"PAINSITE_FEATURE_PATH={PAINSITE_FEATURE_PATH!r}; valid options: auto, float32, bf16, int8-onnxruntime"
    )

# E-mail to admins (gate verdicts, drift): Django's own settings. The console backend prints the
# mail in the worker's log until a site sets its SMTP server.
EMAIL_BACKEND = os.getenv("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.getenv("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "0")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "painsite@localhost")
PAINSITE_ADMIN_EMAILS = envlist("PAINSITE_ADMIN_EMAILS", "")
# The address links in e-mails start with.
PAINSITE_SITE_URL = os.getenv("PAINSITE_SITE_URL", "http://127.0.0.1:8000")

# Celery. The embedded default is kombu's SQLAlchemy transport on a SQLite file: a real
# `celery worker` process with no broker server. Production: redis://… or amqp://….
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", str(6 * 3600))
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", str(6 * 3600 + 300))
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers unacknowledged tasks only after the visibility timeout: keep it above the
# longest training run.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", str(12 * 3600))}
    # Prefixes every key (queues included): processes sharing one Redis database but not a prefix
    # never see each other's tasks. The tests give each worker test a prefix of its own.
    if os.getenv("CELERY_BROKER_KEY_PREFIX"):
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEY_PREFIX"]
elif CELERY_BROKER_URL.startswith("sqla+sqlite"):
    # kombu hands these to SQLAlchemy's create_engine: wait for SQLite's lock instead of failing.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"connect_args": {"timeout": 30}}
CELERY_TASK_ALWAYS_EAGER = False

# Requests per account (assessments, image uploads) or per client address (token requests).
PAINSITE_THROTTLE_RATES = {
    "assessments": os.getenv("PAINSITE_THROTTLE_ASSESSMENTS", "240/minute"),
    "uploads": os.getenv("PAINSITE_THROTTLE_UPLOADS", "1200/minute"),
    "token": os.getenv("PAINSITE_THROTTLE_TOKEN", "60/minute"),
}
REST_FRAMEWORK = {
    # Token first, so an anonymous API request gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "painsite.core.token_auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "painsite.core.api.exception_handler",
    # How many proxies of ours add X-Forwarded-For; with 0, the header is ignored (clients can
    # write it), and the rates and the log-in lockout count by REMOTE_ADDR.
    "NUM_PROXIES": envint("PAINSITE_TRUSTED_PROXIES", "0"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PainSite API",
    "DESCRIPTION": "Postoperative pain assessment from facial images: patients, images, labels, "
    "training runs, model versions and assessments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The FHIR export's operation URLs keep their "$" (modeling/api_fhir.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "modeling.api_fhir.restore_operation_paths",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CohortEnum": "annotation.models.Cohort",
        "ConsentEnum": "annotation.models.Consent",
        "LabelKindEnum": "annotation.models.LabelKind",
        "StageEnum": "modeling.models.Stage",
        "RunStatusEnum": "modeling.models.RunStatus",
        # Imports and evaluations share one set of statuses (queued, running, succeeded, failed).
        "JobStatusEnum": "annotation.models.ImportStatus",
    },
}

SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", str(8 * 3600))
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
# Styles may be inline (SVG plots set colours per element); scripts never are.
PAINSITE_CONTENT_SECURITY_POLICY = os.getenv(
    "PAINSITE_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "True")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", str(365 * 24 * 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "filters": {
        "refusals_without_traceback": {"()": "painsite.core.log_filters.RefusalsWithoutTraceback"},
        "quiet_routine_tasks": {"()": "painsite.core.log_filters.QuietRoutineTasks"},
    },
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Celery's lines about each ward round (every PAINSITE_WARD_TICK_SECONDS).
        "celery.beat": {"filters": ["quiet_routine_tasks"]},
        "celery.worker.strategy": {"filters": ["quiet_routine_tasks"]},
        "celery.app.trace": {"filters": ["quiet_routine_tasks"]},
        "celery.worker.request": {"filters": ["quiet_routine_tasks"]},  # rounds that expired in the queue
        # Django's own console handler (DEBUG only) would print each record a second time beside root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["refusals_without_traceback"]},
    },
}

# Training runs (modeling/services.py, modeling/training_runner.py): defaults for a run's config
# (each run records the values it used) and the crash-recovery policy. A worker writes a heartbeat
# every PAINSITE_TRAINING_HEARTBEAT_SECONDS; a running run whose heartbeat is older than
# PAINSITE_TRAINING_STALE_SECONDS lost its worker and is resumed from its last epoch checkpoint,
# or failed after PAINSITE_TRAINING_MAX_ATTEMPTS attempts. Celery beat runs the check (`worker -B`
# in `make run`, one `celery beat` process in production: docs/deploy.md).
PAINSITE_TRAINING_EPOCHS = envint("PAINSITE_TRAINING_EPOCHS", "30")
PAINSITE_TRAINING_LR = envfloat("PAINSITE_TRAINING_LR", "0.001")
PAINSITE_TRAINING_BATCH_SIZE = envint("PAINSITE_TRAINING_BATCH_SIZE", "32")
PAINSITE_TRAINING_IMAGE_SIZE = envint("PAINSITE_TRAINING_IMAGE_SIZE", "224")
PAINSITE_TRAINING_PATIENCE = envint("PAINSITE_TRAINING_PATIENCE", "5")
PAINSITE_TRAINING_SEED = envint("PAINSITE_TRAINING_SEED", "0")
PAINSITE_BOOTSTRAP_RESAMPLES = envint("PAINSITE_BOOTSTRAP_RESAMPLES", "2000")
PAINSITE_SPLIT_SEED = envint("PAINSITE_SPLIT_SEED", "0")
PAINSITE_TRAINING_HEARTBEAT_SECONDS = envfloat("PAINSITE_TRAINING_HEARTBEAT_SECONDS", "5")
PAINSITE_TRAINING_STALE_SECONDS = envfloat("PAINSITE_TRAINING_STALE_SECONDS", "120")
PAINSITE_TRAINING_MAX_ATTEMPTS = envint("PAINSITE_TRAINING_MAX_ATTEMPTS", "3")
PAINSITE_REAPER_INTERVAL_SECONDS = envfloat("PAINSITE_REAPER_INTERVAL_SECONDS", "30")
# Features as images arrive (modeling/feature_backlog.py): a `default` worker computes each new
# image's frozen features, so the next head-mode retrain finds them cached.
PAINSITE_FEATURES_ON_ARRIVAL = envbool("PAINSITE_FEATURES_ON_ARRIVAL", "1")
PAINSITE_FEATURES_CLAIM_SECONDS = envfloat("PAINSITE_FEATURES_CLAIM_SECONDS", "600")
PAINSITE_FEATURES_YIELD_SECONDS = envfloat("PAINSITE_FEATURES_YIELD_SECONDS", "60")
PAINSITE_FEATURES_KICK_SECONDS = envfloat("PAINSITE_FEATURES_KICK_SECONDS", "300")
PAINSITE_FEATURES_BATCHES_PER_TASK = envint("PAINSITE_FEATURES_BATCHES_PER_TASK", "8")
# The learning loop (docs/learning-loop.md): beat checks the retrain policy, the gate's waiting
# verdicts and drift every PAINSITE_LEARNING_LOOP_SECONDS.
PAINSITE_LEARNING_LOOP_SECONDS = envfloat("PAINSITE_LEARNING_LOOP_SECONDS", "60")
PAINSITE_DRIFT_WINDOW_DAYS = envfloat("PAINSITE_DRIFT_WINDOW_DAYS", "7")
PAINSITE_DRIFT_MIN_ASSESSMENTS = envint("PAINSITE_DRIFT_MIN_ASSESSMENTS", "30")
PAINSITE_DRIFT_PSI_WARN = envfloat("PAINSITE_DRIFT_PSI_WARN", "0.25")
CELERY_BEAT_SCHEDULE = {
    "learning-loop": {
        "task": "modeling.tasks.run_learning_loop",
        "schedule": PAINSITE_LEARNING_LOOP_SECONDS,
    },
    "reap-stale-training-runs": {
        "task": "modeling.tasks.reap_stale_runs",
        "schedule": PAINSITE_REAPER_INTERVAL_SECONDS,
    },
}
# Ward monitoring (docs/deploy.md, "Ward monitoring"): beat sends a ward round to the
# `monitoring` queue every PAINSITE_WARD_TICK_SECONDS; each round assesses the cameras whose next
# slot is due. An alert nobody acknowledges within PAINSITE_WARD_ESCALATE_SECONDS is e-mailed to
# the admins. Frames are not kept unless PAINSITE_WARD_KEEP_ALERT_FRAMES=1 (then an alert's frame
# is stored as an image of that patient).
PAINSITE_WARD_TICK_SECONDS = envfloat("PAINSITE_WARD_TICK_SECONDS", "1")
PAINSITE_WARD_ESCALATE_SECONDS = envfloat("PAINSITE_WARD_ESCALATE_SECONDS", "300")
PAINSITE_WARD_KEEP_ALERT_FRAMES = envbool("PAINSITE_WARD_KEEP_ALERT_FRAMES", "0")
PAINSITE_WARD_TREND_HOURS = envfloat("PAINSITE_WARD_TREND_HOURS", "4")
PAINSITE_WARD_BOARD_POLL_SECONDS = envfloat("PAINSITE_WARD_BOARD_POLL_SECONDS", "3")
# Faces per forward pass in a ward round (a round's faces go through in batches of this size).
PAINSITE_WARD_BATCH_SIZE = envint("PAINSITE_WARD_BATCH_SIZE", "32")
# Cameras a round reads at once, and how long a network camera may take to connect or to give a
# frame before it counts as giving none (modeling/ward_frames.py).
PAINSITE_WARD_READ_THREADS = envint("PAINSITE_WARD_READ_THREADS", "32")
PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS = envfloat("PAINSITE_WARD_CAMERA_TIMEOUT_SECONDS", "5")
CELERY_BEAT_SCHEDULE["ward-round"] = {
    "task": "modeling.tasks.run_ward_round",
    "schedule": PAINSITE_WARD_TICK_SECONDS,
    # A round left in the broker while the worker was busy is dropped: the next one covers it.
    "options": {"expires": max(PAINSITE_WARD_TICK_SECONDS * 2, 2)},
}
if PAINSITE_FEATURES_ON_ARRIVAL:
    CELERY_BEAT_SCHEDULE["compute-pending-features"] = {
        "task": "modeling.tasks.compute_pending_features",
        "schedule": PAINSITE_FEATURES_KICK_SECONDS,
    }
