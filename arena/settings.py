"""Arena settings. Environment variables are read here only, through arena.env."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import dj_database_url
import django_stubs_ext
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from arena.env import env_bool, env_float, env_int, env_list, env_secret, env_str

django_stubs_ext.monkeypatch()  # lets admin.ModelAdmin[Model] etc. subscript at run time

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ARENA_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE), or DEBUG=true for "
            "local development."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-true"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "arena.apps.ArenaConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "arena.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "arena.urls"
ASGI_APPLICATION = "arena.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'arena.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The zero-setup default of `make run`: several processes share one file.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI each request runs in a thread of its own, so a persistent connection is never
    # reused: every request connected afresh and the idle ones piled up until PostgreSQL
    # refused more ("too many clients" at 32 concurrent API clients). A pool per process is
    # shared by those threads and bounds the load. Generation workers hold a connection only
    # around their short queries, never while a model generates (see generation/answers.py).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Server-side binding lets psycopg prepare a statement after a few executions on a
    # connection (prepare_threshold), so PostgreSQL plans the hot queries once per pooled
    # connection instead of on every request: planning the sampler's joins costs more than
    # running them.
    # (Django leaves prepare_threshold unset for the sake of external poolers such as
    # PgBouncer in transaction mode; ARENA_DB_PREPARE_THRESHOLD=0 turns preparing off there.)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=env_int("ARENA_DB_PREPARE_THRESHOLD", 2, minimum=0) or None,
    )
    if importlib.util.find_spec("psycopg_pool") is not None:  # psycopg[pool]
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_int("ARENA_DB_POOL_MAX", 8, minimum=1),
            "timeout": 10,
            "max_idle": 300,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("ARENA_CHANNEL_PREFIX", "arena")},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins (the login page and the admin's) are counted per username and client IP by
# django-axes; at ARENA_LOGIN_FAILURES failures that pair is refused, even with the right
# password, for ARENA_LOGIN_COOLOFF_MINUTES. Keying on the pair, as axes recommends, keeps an
# attacker from locking a real user out from elsewhere, provided the client address is the
# client's: behind a proxy, uvicorn must trust its X-Forwarded-For (FORWARDED_ALLOW_IPS, see
# docker/.env.example). authenticate() needs the request.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ARENA_LOGIN_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("ARENA_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "arena.views.login_lockout"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "arena" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("ARENA_STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# Request bodies: arena.asgi answers 413 to a body over ARENA_MAX_BODY_BYTES before buffering
# it; the upload endpoints take a file of ARENA_MAX_UPLOAD_BYTES plus that much for the rest.
ARENA_MAX_BODY_BYTES = env_int("ARENA_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
ARENA_MAX_UPLOAD_BYTES = env_int("ARENA_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1)
ARENA_MAX_QUESTION_CHARS = env_int("ARENA_MAX_QUESTION_CHARS", 20_000, minimum=1)
ARENA_MAX_QUESTIONS_PER_IMPORT = env_int("ARENA_MAX_QUESTIONS_PER_IMPORT", 50_000, minimum=1)
# Django's own checks behind the ASGI one (the test client and WSGI skip arena.asgi): the
# non-file part of a body, and the size above which bodies and uploads spool to disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = ARENA_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

ARENA_MODEL_CACHE = Path(
    env_str("ARENA_MODEL_CACHE", str(VAR_DIR / "models" / "smollm2-135m-instruct"))
)
ARENA_BATTLE_TTL_SECONDS = env_int("ARENA_BATTLE_TTL_SECONDS", 3600, minimum=60)
ARENA_VOTES_PER_MINUTE = env_int("ARENA_VOTES_PER_MINUTE", 60, minimum=1)
ARENA_LIVE_PER_MINUTE = env_int("ARENA_LIVE_PER_MINUTE", 10, minimum=1)
# Vote quality (arena/quality/). A vote faster than the reading floor, or from an anonymous
# session younger than ARENA_NEW_SESSION_SECONDS, is marked low-confidence (still counted);
# the quality page's "too fast" share uses the same floor.
ARENA_READING_FLOOR_MS = env_int("ARENA_READING_FLOOR_MS", 4000, minimum=0)
ARENA_NEW_SESSION_SECONDS = env_int("ARENA_NEW_SESSION_SECONDS", 120, minimum=0)
# Open campaigns: limits per client IP and per anonymous session, counted in Redis by
# django-ratelimit ("N/s|m|h|d"). The client IP is REMOTE_ADDR, which the server sets from
# X-Forwarded-For only for proxies in FORWARDED_ALLOW_IPS (see docker/.env.example).
ARENA_OPEN_VOTES_PER_IP = env_str("ARENA_OPEN_VOTES_PER_IP", "300/h")
ARENA_OPEN_VOTES_PER_SESSION = env_str("ARENA_OPEN_VOTES_PER_SESSION", "120/h")
ARENA_OPEN_SESSIONS_PER_IP = env_str("ARENA_OPEN_SESSIONS_PER_IP", "20/h")
ARENA_OPEN_LIVE_PER_IP = env_str("ARENA_OPEN_LIVE_PER_IP", "60/h")
ARENA_OPEN_LIVE_PER_SESSION = env_str("ARENA_OPEN_LIVE_PER_SESSION", "30/h")
# Live generation per client IP per hour, for everyone (members too): answers generated.
ARENA_LIVE_BUDGET_PER_IP_HOUR = env_int("ARENA_LIVE_BUDGET_PER_IP_HOUR", 200, minimum=1)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("ARENA_RATELIMIT_PREFIX", "arena-rl"),
    },
}
RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_ENABLE = True
# A live stream's rhythm, the same for both sides of every battle (arena/generation/pacing.py):
# frames of this many characters, one per tick. 8 characters per 40 ms is 200 characters/s.
ARENA_STREAM_CHUNK_CHARS = env_int("ARENA_STREAM_CHUNK_CHARS", 8, minimum=1)
ARENA_STREAM_INTERVAL_MS = env_int("ARENA_STREAM_INTERVAL_MS", 40, minimum=5)
ARENA_RATING_DEBOUNCE_SECONDS = env_int("ARENA_RATING_DEBOUNCE_SECONDS", 10, minimum=0)
ARENA_BOOTSTRAP_ROUNDS = env_int("ARENA_BOOTSTRAP_ROUNDS", 1000, minimum=10)
# Votes a rating worker keeps in memory between recomputes (about 60 bytes each, over all
# campaigns), so that the next one reads only newer votes (arena/ratings/store.py); 0: none.
ARENA_KEPT_VOTES = env_int("ARENA_KEPT_VOTES", 4_000_000, minimum=0)
# Rating history: the campaign's snapshots are kept every one for an hour, one per 10 minutes
# for a day, then one per day for ARENA_HISTORY_DAYS days (0: for ever); arena/ratings/history.py.
ARENA_HISTORY_DAYS = env_int("ARENA_HISTORY_DAYS", 365, minimum=0)

# Celery: one broker on Redis. Generation tasks go to per-contestant queues `gen.<slug>`.
ARENA_GENERATION_SOFT_LIMIT = env_int("ARENA_GENERATION_SOFT_LIMIT", 600, minimum=10)
ARENA_GENERATION_HARD_LIMIT = env_int("ARENA_GENERATION_HARD_LIMIT", 660, minimum=11)
if ARENA_GENERATION_HARD_LIMIT <= ARENA_GENERATION_SOFT_LIMIT:
    raise ImproperlyConfigured("ARENA_GENERATION_HARD_LIMIT must exceed the soft limit")
ARENA_GENERATION_MAX_RETRIES = env_int("ARENA_GENERATION_MAX_RETRIES", 5, minimum=0)
# Retry n waits base * 2**n seconds (capped at 300) after a transient backend error.
ARENA_RETRY_BACKOFF_SECONDS = env_float("ARENA_RETRY_BACKOFF_SECONDS", 2.0)
ARENA_GENERATION_CONCURRENCY = env_int("ARENA_GENERATION_CONCURRENCY", 32, minimum=1)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("ARENA_WORKER_PREFETCH", 1, minimum=1)
CELERY_TASK_ALWAYS_EAGER = env_bool("ARENA_CELERY_EAGER", False)
# Redelivery of an unacknowledged task must wait longer than any task may run.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int(
        "ARENA_VISIBILITY_TIMEOUT", ARENA_GENERATION_HARD_LIMIT + 300, minimum=1
    )
}
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= ARENA_GENERATION_HARD_LIMIT:
    raise ImproperlyConfigured("ARENA_VISIBILITY_TIMEOUT must exceed the hard time limit")
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "recompute-ratings": {
        "task": "arena.tasks.recompute_all_ratings",
        "schedule": env_float("ARENA_RATING_PERIOD_SECONDS", 300.0),
    }
}

SESSION_COOKIE_SECURE = env_bool("ARENA_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# HTTPS. On by default with DEBUG=false; `make run` and the tests (DEBUG=true) and the load
# benchmark (ARENA_SSL_REDIRECT=false) serve plain http on 127.0.0.1. /healthz is never
# redirected: probes (compose's included) ask over http. Preloading is opt-in: it asks the
# browsers to hard-code HTTPS for the whole domain, which is slow to undo.
SECURE_SSL_REDIRECT = env_bool("ARENA_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("ARENA_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ARENA_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("ARENA_HSTS_PRELOAD", False)
# Only behind a proxy that sets X-Forwarded-Proto itself and strips the client's copy.
if env_bool("ARENA_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp). Scripts run only from our static files or with this
# response's nonce; nothing inline (no on*= handlers, no style= attributes). The middleware
# adds ws:// and wss:// of the requested host to connect-src for browsers whose 'self' does
# not cover websockets.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("ARENA_LOG_LEVEL", "INFO")},
}
