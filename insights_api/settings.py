"""Settings for every environment, read from environment variables only (see README, Configuration)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from insights_api.env import env_bool, env_choice, env_float, env_int, env_list, env_optional_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -----------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
# A development key is allowed only with DEBUG on; production must set its own.
SECRET_KEY = env_str("SECRET_KEY", "insecure-development-key-only-for-debug" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "insights_api.apps.InsightsApiConfig",
    "accounts",
    "insights",
    "tagging",
    "viewtracking",
    "ai_metadata",
    "demo",
]

MIDDLEWARE = [
    # Outermost: every response and log line carries the request id; every request is timed.
    "apikit.request_id.RequestIdMiddleware",
    "apikit.request_metrics.RequestMetricsMiddleware",
    # Notes when a request arrived — before it waits for a slot, so that one that queued there still
    # joins an execution that started meanwhile — and keys result requests that may be shared; the
    # views coalesce them after their own checks.
    "apikit.coalescing.CoalescingMiddleware",
    # A request works only with one of the process's slots; waiting, it holds none (slots.py).
    "infra.slots.WorkSlotsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apikit.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "insights_api.urls"
WSGI_APPLICATION = "insights_api.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Routes answer with and without a trailing slash; never redirect an API POST.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_TZ = True
USE_I18N = False

STATIC_URL = "static/"
STATIC_ROOT: Path | None = BASE_DIR / ".static"  # None in the tests (settings_test)
# Swagger UI and Redoc assets ship with drf-spectacular-sidecar and are served by WhiteNoise, so the
# docs work offline and without a CDN.
WHITENOISE_USE_FINDERS = True

# --- Database -------------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/insights"),
        conn_max_age=0,
        # The pool tests a connection before lending it, so one that a PostgreSQL restart left dead is
        # replaced instead of failing the request that draws it.
        conn_health_checks=True,
    )
}
# Django's PostgreSQL backend, with a pool that drops all its dead connections at once (its module
# says why).
DATABASES["default"]["ENGINE"] = "infra.db"
DATABASES["default"].setdefault("OPTIONS", {}).update(
    {
        # psycopg's pool keeps connections open across requests; each process (gunicorn worker, Celery
        # child) owns its own pool, created lazily on first use.
        "pool": (
            {
                "min_size": 1,
                # A request holds one only while it works, never while it waits (queries run on the
                # query workers); a gevent process serves many requests at once, and the pool bounds
                # how many of them reach PostgreSQL together.
                "max_size": env_int("DATABASE_POOL_MAX_SIZE", 16, minimum=1),
                # How long a request waits for a connection before it answers 503. While PostgreSQL
                # is down every request waits this long, so it is short: clients fail fast and retry.
                "timeout": env_float("DATABASE_POOL_TIMEOUT_SECONDS", 2.0, minimum=0.1),
            }
            if env_bool("DATABASE_POOL", True)
            else False
        ),
        # An unreachable host (no answer at all, not a refusal) costs at most this per attempt.
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5, minimum=2),
        # A runaway statement cannot hold a connection for ever.
        "options": f"-c statement_timeout={env_int('DATABASE_STATEMENT_TIMEOUT_MS', 30_000, minimum=0)}",
    }
)

# Requests of one web process that work at once, projects in turn (waiting ones hold none: the others
# queue for a slot instead of for a connection, so keep it below DATABASE_POOL_MAX_SIZE). Fewer make
# another project's cheap request wait behind fewer others during a crowd, but cost read throughput
# where PostgreSQL does much of the work (docs/workload-isolation.md).
WEB_WORK_SLOTS = env_int("WEB_WORK_SLOTS", 8, minimum=1)

# --- Redis: cache, throttling, coalescing, Celery broker ------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "infra.cache.SharedRedisCache",  # one client per process (its module says why)
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "insights"),
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
# HTTPS=true: the service is reached over HTTPS only (behind a TLS proxy, set BEHIND_PROXY too, so
# that Django knows a request came over HTTPS). `manage.py check --deploy` is clean with HTTPS,
# SECURE_SSL_REDIRECT and SECURE_HSTS_PRELOAD on (tests/reliability/test_hardening.py).
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# PostHog's frontend reads the token from this cookie and sends it back as `X-CSRFToken` (docs/posthog-clients.md).
CSRF_COOKIE_NAME = "posthog_csrftoken"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Orchestrator probes and Prometheus call these over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^_health$", r"^_ready$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
# Strict-Transport-Security (sent on HTTPS answers only): browsers then refuse plain HTTP to this host.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
# Consent to the browsers' preload list binds the whole domain for months: the operator opts in.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker takes a task only when one of its processes is free: no task waits in a busy worker's
# buffer while another worker is idle.
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Sending a task subscribes to its result in Redis; with Redis down Celery's default policy retries for
# about 20 s before giving up. Callers fall back at once instead (metadata: the heuristic; async
# queries: 503), so give up within half a second.
# Publishing a task with the broker down likewise gives up within about a second (its default waits
# up to its 4 s connect timeout, per call, with retries): callers fall back instead.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
    "connect_retries_timeout": 1,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
}
# Query runs go to the query workers (`celery worker -Q queries`), the lane's bounded capacity; every
# other task to the default queue. Deployments that share a broker give each its own QUERY_QUEUE.
QUERY_QUEUE = env_str("QUERY_QUEUE", "queries")
CELERY_TASK_ROUTES = {"insights.compute_execution": {"queue": QUERY_QUEUE}}
CELERY_BEAT_SCHEDULE = {
    "rollup-views": {
        "task": "viewtracking.rollup_views",
        "schedule": env_float("VIEW_ROLLUP_INTERVAL_SECONDS", 60.0, minimum=1.0),
    },
    "prune-views": {"task": "viewtracking.prune_views", "schedule": 24 * 3600.0},
}

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The first class decides the WWW-Authenticate header of a 401.
        "accounts.api.authentication.PersonalAPIKeyAuthentication",
        "accounts.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "apikit.renderers.SafeCSVRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["apikit.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apikit.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "apikit.pagination.LimitOffsetPagination",
    "DEFAULT_THROTTLE_CLASSES": [
        "apikit.throttling.BurstThrottle",
        "apikit.throttling.SustainedThrottle",
    ],
    "DEFAULT_SCHEMA_CLASS": "apikit.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apikit.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0) if env_bool("BEHIND_PROXY", False) else 0,
}

# Requests per period; each is "<n>/<second|minute|hour|day>".
THROTTLE_RATES = {
    "burst": env_str("THROTTLE_BURST", "480/minute"),
    "sustained": env_str("THROTTLE_SUSTAINED", "4800/hour"),
    "login": env_str("THROTTLE_LOGIN", "10/minute"),
    "ai_project": env_str("THROTTLE_AI_PER_PROJECT", "60/hour"),
}

EXCEPTIONS_HOG = {
    "ENABLE_IN_DEBUG": True,
    "EXCEPTION_REPORTING": "apikit.exceptions.exception_reporter",
}

PUBLIC_URL = env_str("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# While this file exists /_ready answers 503 (`make run` holds readiness while it seeds the demo data).
READINESS_HOLD_FILE = env_str("READINESS_HOLD_FILE", "")

SPECTACULAR_SETTINGS = {
    "TITLE": "Insights API",
    "DESCRIPTION": (
        "Keep, share and find saved product-analytics insights. Wire-compatible with PostHog's "
        "Insights API. Every error uses the envelope `{type, code, detail, attr}`. Every operation "
        "also answers `?format=csv` (JSON flattened to dotted columns, formula cells escaped). No text "
        "anywhere may contain NUL characters (`\\u0000`); they are refused with a 400."
    ),
    "VERSION": "1.0.0",
    # OpenAPI 3.1: nullability as `type: [X, "null"]`, which every generator reads the same way.
    "OAS_VERSION": "3.1.0",
    "LICENSE": {"name": "MIT", "identifier": "MIT"},
    # Where the API is served, for "try it out" and generated clients' default base URL.
    "SERVERS": [{"url": PUBLIC_URL, "description": "This installation (PUBLIC_URL)."}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apikit.schema.move_request_defaults",
        "apikit.schema.simplify_nullable_any",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Names SDK generators turn into class names (drf-spectacular would say TypeEnum, ActionEnum, KindEnum).
    "ENUM_NAME_OVERRIDES": {
        "ErrorTypeEnum": "apikit.schema.ERROR_TYPES",
        "TagActionEnum": ["add", "remove", "set"],
        "PropertyTypeEnum": "insights.query_nodes.common.PROPERTY_TYPES",
        "LegacyPermissionLevelEnum": "insights.api.serializers.LEGACY_LEVELS",
        "AccessLevelEnum": "insights.models.AccessLevel",
        "ActivitySubjectEnum": ["Insight"],
        "ChangeActionEnum": ["changed"],
        "MembershipLevelEnum": ["member", "admin", "owner"],
        "UsageIntervalEnum": "viewtracking.usage.INTERVALS",
        "IntervalEnum": ["minute", "hour", "day", "week", "month"],  # the query nodes' interval
    },
}

# --- The events store (docs/events-store.md) ----------------------------------------------------------
# Where events are kept and Trends computed: PostgreSQL's `insights_event`, or ClickHouse at
# CLICKHOUSE_URL (a server, or the embedded chDB database `make run` serves when it is not set).
EVENTS_BACKEND = env_choice("EVENTS_BACKEND", "postgres", ("postgres", "clickhouse"))
CLICKHOUSE_URL = env_str("CLICKHOUSE_URL", "")
CLICKHOUSE_DATABASE = env_str("CLICKHOUSE_DATABASE", "insights")
CLICKHOUSE_CONNECT_TIMEOUT_SECONDS = env_float("CLICKHOUSE_CONNECT_TIMEOUT_SECONDS", 3.0, minimum=0.1)
# Rows per insert when loading events (each a round trip; memory is one batch).
CLICKHOUSE_INSERT_BATCH = env_int("CLICKHOUSE_INSERT_BATCH", 100_000, minimum=1)

# --- Queries, coalescing and the query lane (docs/queries.md, docs/workload-isolation.md) --------------------------------------------
# Bounds one query run in the database; never the wait for its turn.
QUERY_TIMEOUT_MS = env_int("QUERY_TIMEOUT_MS", 30_000, minimum=100)
# PostgreSQL parallel workers a query run may add to its own process (max_parallel_workers_per_gather;
# unset: PostgreSQL's own setting). Fewer leave more of the cores to cheap requests while queries run,
# at the cost of a parallel scan's speed (docs/workload-isolation.md has both measured).
QUERY_PARALLEL_WORKERS = env_optional_int("QUERY_PARALLEL_WORKERS", minimum=0)
# Executions of one project running at once (insights/results.py); the others queue in arrival
# order, each request for at most QUERY_QUEUE_TIMEOUT_SECONDS before a 429.
QUERY_CONCURRENCY_PER_PROJECT = env_int("QUERY_CONCURRENCY_PER_PROJECT", 2, minimum=1)
QUERY_QUEUE_TIMEOUT_SECONDS = env_float("QUERY_QUEUE_TIMEOUT_SECONDS", 30.0, minimum=0.1)
# A query no query worker takes within this while none is alive answers 503 query_workers_unavailable.
QUERY_PICKUP_TIMEOUT_SECONDS = env_float("QUERY_PICKUP_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# A query worker renews its presence every third of this; one missing this long counts as gone.
QUERY_WORKER_LEASE_SECONDS = env_float("QUERY_WORKER_LEASE_SECONDS", 3.0, minimum=0.3)
# Identical concurrent result requests run once; whoever drives an execution renews its lease every
# heartbeat, and a waiter takes over when the lease lapses (two heartbeats).
COALESCING_ENABLED = env_bool("COALESCING_ENABLED", True)
COALESCING_HEARTBEAT_SECONDS = env_float("COALESCING_HEARTBEAT_SECONDS", 1.0, minimum=0.05)
# How long a waiting request holds on while Redis is unreachable before it answers 503.
REDIS_OUTAGE_SECONDS = env_float("REDIS_OUTAGE_SECONDS", 15.0, minimum=0.5)
# Without Redis a web process computes queries itself: at most this many at once (each holds a pooled
# connection, so the pool keeps WEB_WORK_SLOTS connections for everything else).
QUERY_LOCAL_CONCURRENCY = max(1, env_int("DATABASE_POOL_MAX_SIZE", 16, minimum=1) - WEB_WORK_SLOTS)

# --- AI metadata suggestions (docs/insight-actions.md#generate_metadata) --------------------------------------------------------------
AI_PROVIDER = env_choice("AI_PROVIDER", "heuristic", ("heuristic", "openai", "anthropic"))
OPENAI_API_KEY = env_str("OPENAI_API_KEY", "")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "")  # e.g. http://localhost:11434/v1 for Ollama
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-5.4-mini")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL", "")
ANTHROPIC_MODEL = env_str("ANTHROPIC_MODEL", "claude-haiku-5-5")
# How long a request waits for the worker, and how long the worker waits for the model.
AI_METADATA_DEADLINE_SECONDS = env_float("AI_METADATA_DEADLINE_SECONDS", 15.0, minimum=0.1)
AI_PROVIDER_TIMEOUT_SECONDS = env_float("AI_PROVIDER_TIMEOUT_SECONDS", 12.0, minimum=0.1)
AI_METADATA_CACHE_SECONDS = env_int("AI_METADATA_CACHE_SECONDS", 24 * 3600, minimum=0)

# --- Logging --------------------------------------------------------------------------------------
# One JSON object per line on stderr (`LOG_FORMAT=plain` for a terminal), each with the request id
# of the request or Celery task that wrote it (infra/logs.py).
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOG_FORMAT = env_choice("LOG_FORMAT", "json", ("json", "plain"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "infra.logs.ContextFilter"}},
    "formatters": {
        "json": {"()": "infra.logs.JSONFormatter"},
        "plain": {
            "()": "infra.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own request log repeats what insights_api.request logs, without the route.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
    },
}
# Celery workers and beat log through LOGGING too, instead of replacing the root logger's handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A worker with its own PROMETHEUS_MULTIPROC_DIR (its own container) serves its metrics on this port
# (0: it does not; web's /metrics already shows workers that share the web processes' directory).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0, maximum=65535)

# --- Product limits -------------------------------------------------------------------------------
API_KEY_LAST_USED_RESOLUTION_SECONDS = env_float("API_KEY_LAST_USED_RESOLUTION_SECONDS", 3600.0)
# Raw view events are pruned after this many days (once rolled up); daily rollups are kept at least
# a year so "not viewed in 90 days" (or 365) stays answerable.
VIEW_EVENT_RETENTION_DAYS = env_int("VIEW_EVENT_RETENTION_DAYS", 30, minimum=2)
VIEW_ROLLUP_RETENTION_DAYS = env_int("VIEW_ROLLUP_RETENTION_DAYS", 730, minimum=366)
