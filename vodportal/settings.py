"""vodportal settings, read from the environment (12-factor).

Every value a deployer sets comes from an environment variable or the deployment's `.env`
file beside manage.py (vodportal/envfile.py: gunicorn.conf.py reads the same file, and the
environment wins over it); README.md lists them. AccessKeys are never read here: the VOD
gateway takes them from the alibabacloud-credentials default chain.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from limits import parse as parse_rate

from vodportal import envfile

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
envfile.load()

# The credentials chain ends with the ECS metadata service (100.100.100.200). Off ECS it can
# only hang or fail, and on our test and sandbox machines it must never be contacted, so it
# is off unless the deployer turns it on explicitly (VOD_USE_ECS_RAM_ROLE=true on ECS).
VOD_USE_ECS_RAM_ROLE = env.bool("VOD_USE_ECS_RAM_ROLE", default=False)
if not VOD_USE_ECS_RAM_ROLE:
    os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"


def env_rate(name: str, default: str) -> str:
    """A request rate from the environment ("60/minute"), checked now: a typo must stop the
    process at start, not fail every request the rate applies to with a 500."""
    value = env.str(name, default=default)
    try:
        parse_rate(value)
    except ValueError:
        raise environ.ImproperlyConfigured(
            f"{name}={value!r} is not a rate: write N/second, N/minute, N/hour or N/day "
            "(for example 60/minute).") from None
    return value


DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise environ.ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-dev-only-key-never-use-in-production"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "uploads",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "uploads.middleware.RequestIdMiddleware",
    "uploads.middleware.NulQueryStringMiddleware",
    "uploads.middleware.QueueTimeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a lockout into its answer on every login form.
    "axes.middleware.AxesMiddleware",
]

# Brute-force protection on every login form (/accounts/login/, /admin/login/): django-axes
# counts failures per client address (the same one the audit trail records) and locks the
# address out for LOGIN_LOCKOUT_MINUTES after LOGIN_FAILURE_LIMIT failures (429).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "uploads.middleware.client_ip"
AXES_RESET_ON_SUCCESS = True
# Every login is in the audit trail already (uploads.auth_audit); axes keeps only failures.
AXES_DISABLE_ACCESS_LOG = True
AXES_LOCKOUT_TEMPLATE = "uploads/locked_out.html"
AXES_VERBOSE = False

ROOT_URLCONF = "vodportal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "vodportal.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Services commit the `requesting` row before calling VOD, so requests must not be wrapped
# in one transaction.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the dev server, the tests' live server) write; wait for the lock
    # instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
else:
    options = DATABASES["default"].setdefault("OPTIONS", {})
    DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=8)
    # Pooled connections are not tested each time one is handed out (a round trip per
    # request, and psycopg_pool backs off for seconds per dead connection after a restart):
    # a lost connection instead makes the pool test its idle ones once
    # (uploads.dependencies.forget_broken_connections). Unpooled ones are tested per request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASE_POOL_SIZE <= 0
    if DATABASE_POOL_SIZE > 0:
        # psycopg's pool, one per worker process, shared by its requests (greenlets or
        # threads): a request holds a connection only while it uses the database, and hands
        # it back while it waits on VOD (services.issuing), so a worker's many requests need
        # few connections. A PostgreSQL server sees at most workers x DATABASE_POOL_SIZE per
        # host (README).
        options["pool"] = {"min_size": min(2, DATABASE_POOL_SIZE),
                           "max_size": DATABASE_POOL_SIZE,
                           # Past this a request gets 503 database_unavailable, not a hang.
                           "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0)}
    else:
        # Without the pool, a connection per request, closed at its end: Django keeps a
        # persistent one per thread, and gunicorn's gevent workers (gunicorn.conf.py) run
        # each request in a greenlet of its own, whose connection no later request would
        # reuse. Behind PgBouncer that is what it is for; with gthread workers, 60 reuses.
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters sent apart from the SQL, and statements a connection runs 5 times
        # prepared: the same few statements issue every credential, so PostgreSQL stops
        # parsing and planning them (its CPU per credential -30 %, bench/README.md). Turn
        # off behind a transaction-pooling PgBouncer older than 1.21.
        options.update({"server_side_binding": True, "prepare_threshold": 5})

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

STATIC_URL = "static/"
# Where collectstatic gathers the assets WhiteNoise serves; the tests' gunicorn stacks collect
# into a directory of their own.
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# WhiteNoise serves collected, hashed, compressed static files (`collectstatic` on deploy).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Cache: shared by every process when REDIS_URL is set (throttles, VOD QPS limiter) ---
REDIS_URL = env.str("REDIS_URL", default="")
if envfile.local_run():
    # `make run` on a host that is also a deployment: never its database or Redis.
    envfile.check_local_run(os.environ.get("DATABASE_URL", ""), REDIS_URL)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL, "KEY_PREFIX": "vodportal",
                          "TIMEOUT": 300}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- HTTPS behind a proxy ----------------------------------------------------------------
SECURE = not DEBUG
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=SECURE)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    # Only when the proxy always sets (and overwrites) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies append to X-Forwarded-For in front of us (client address for the audit
# trail and the throttles); 0 trusts only REMOTE_ADDR.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# The upload pages' own login (staff may use it too; the admin keeps its own).
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/upload/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "uploads.api.authentication.TokenAuthentication",
        "uploads.api.oidc_authentication.OIDCAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "uploads.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["uploads.api.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "uploads.api.schema.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        # Per user, shared by every process through the cache (Redis in production).
        "credentials": env_rate("API_CREDENTIAL_RATE", "60/minute"),
        "refresh": env_rate("API_REFRESH_RATE", "60/minute"),
    },
    "NUM_PROXIES": NUM_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "vodportal API",
    "DESCRIPTION": "Upload URLs and credentials for ApsaraVideo VOD, and the records of "
                   "every media id issued.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "uploads.api.schema.link_issued_ids"],
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

# --- ApsaraVideo VOD ------------------------------------------------------------------
VOD_REGION = env.str("VOD_REGION", default="cn-shanghai")
# Empty: the SDK's regional endpoint (vod.<region>.aliyuncs.com). The sandbox sets host:port.
VOD_ENDPOINT = env.str("VOD_ENDPOINT", default="")
VOD_PROTOCOL = env.str("VOD_PROTOCOL", default="https")
VOD_CONNECT_TIMEOUT_MS = env.int("VOD_CONNECT_TIMEOUT_MS", default=3000)
VOD_READ_TIMEOUT_MS = env.int("VOD_READ_TIMEOUT_MS", default=10000)
# Connections to VOD each worker process keeps open for reuse: as many as the requests it
# serves at once (gunicorn.conf.py, GUNICORN_WORKER_CONNECTIONS, read from the same
# environment and .env), so none is opened and thrown away while VOD is slow.
VOD_HTTP_CONNECTIONS = env.int("VOD_HTTP_CONNECTIONS",
                               default=env.int("GUNICORN_WORKER_CONNECTIONS", default=100))
# The account's VOD QPS limit per operation (80/s in most regions, 40/s in some): vodportal
# keeps its own calls under it, across every process through Redis (REDIS_URL).
VOD_QPS_LIMIT = env.int("VOD_QPS_LIMIT", default=80)
# A request that waited longer than this since the proxy in front received it (its
# X-Request-Start header) is answered 503 `overloaded` before any work. 0: never.
REQUEST_MAX_QUEUE_MS = env.int("REQUEST_MAX_QUEUE_MS", default=1000)
# How far ahead a call may be booked (it waits that long) before it is refused with a 429
# at once: short, so that a burst gets fast refusals instead of a queue (uploads/vod/limiter.py).
# Offered exactly VOD's limit, the queue stays full (capacity is just under the limit, see the
# margin), so every admitted request waits about this long; a longer wait refuses no fewer:
# 100 ms gave p99 183/304/473 ms at VOD +50/150/300 ms, 50 ms 135/237/426 ms, the same
# 0.5-1 % refused (bench/README.md, "Capacity under VOD latency").
VOD_QPS_MAX_WAIT_MS = env.int("VOD_QPS_MAX_WAIT_MS", default=50)
# Calls that may leave back to back after a quiet spell; past them, calls are spaced evenly
# at 1/VOD_QPS_LIMIT s (uploads/vod/limiter.py, "Pacing"). Under a sustained overload that
# spreads admissions, and VOD's answers, over each second instead of taking a whole
# second's slots at once: at 240/s, 429 p99 36 ms against 756 ms (bench/README.md,
# "Capacity under VOD latency"). Set it to VOD_QPS_LIMIT to let a whole second's worth go
# at once. A process refusing a tenth or more of its bookings books with no burst (its
# excess is refused anyway): at 240/s, 429 p99 23 to 37 ms against 30 to 57 with it.
VOD_QPS_BURST = env.int("VOD_QPS_BURST", default=max(1, VOD_QPS_LIMIT // 4))
# The limit holds in every window of 1 s plus this margin, to cover the spread between our
# send moments and VOD's arrival moments; a call must leave the limiter within it of its
# moment, or it counts as late. Capacity: VOD_QPS_LIMIT / (1 s + margin), 79.6/s for 80.
# While a process refuses a tenth or more of its bookings (more traffic than VOD's limit),
# its new slots cover VOD_QPS_OVERLOAD_MARGIN_MS instead, the difference left to the SDK's work
# after the limiter (under 1 ms), which can then wait for the GIL: at 240/s on 2 cores it
# took 6 to 19 ms for 2 to 3 % of the calls, up to 24 ms at 120/s on a slower host. With
# 5 ms the sandbox saw 81 to 83 calls in a second; 15 ms (all of it usable by a late exit)
# still gave 81 and 82 at 120/s; 30 ms with 5 for the exit: 80, no Throttling (bench/README.md,
# "The overload margin split between the limiter and the SDK"). At exactly 80/s, 5 ms kept it
# at 80 on an Intel host; on a slower AMD one the sandbox saw 81 in a second 2 to 6 times in
# 20 s; a wider normal margin should cover that (not measured), at the cost of that capacity.
# With gevent workers (gunicorn.conf.py) the SDK's work after the limiter waits for the
# worker's other requests where it yields: at 240/s, p50 1 ms, p99 13 to 17 ms, and up to
# 28 to 45 ms for one call in a thousand, so 30 ms let VOD see an 81st call in one run of
# three; 50 ms (45 for the SDK) admits 76 a second under overload instead of 77.
VOD_QPS_MARGIN_MS = env.int("VOD_QPS_MARGIN_MS", default=5)
VOD_QPS_OVERLOAD_MARGIN_MS = env.int("VOD_QPS_OVERLOAD_MARGIN_MS", default=50)
# Attempts per VOD call for failures a retry can mend (5xx, connection errors), only where a
# repeat cannot create a second media. 1 turns retries off.
VOD_MAX_ATTEMPTS = env.int("VOD_MAX_ATTEMPTS", default=2)
VOD_RETRY_BACKOFF_MS = env.int("VOD_RETRY_BACKOFF_MS", default=200)
VOD_APP_ID = env.str("VOD_APP_ID", default="")
# How long /readyz trusts a passing `vod_check` verdict (a failing one: 60 s) before it
# checks again with harmless VOD calls.
VOD_CHECK_CACHE_SECONDS = env.int("VOD_CHECK_CACHE_SECONDS", default=300)
VOD_TEMPLATE_GROUP_ID = env.str("VOD_TEMPLATE_GROUP_ID", default="")
# Template groups that never transcode: VOD's built-in "No Transcoding" group, and any of the
# account's own. A video processed with one is `ready` once its file is in (VOD sends only
# FileUploadComplete for it, never TranscodeComplete).
VOD_NO_TRANSCODE_TEMPLATE_GROUP_IDS = env.list("VOD_NO_TRANSCODE_TEMPLATE_GROUP_IDS",
                                               default=["VOD_NO_TRANSCODE"])
VOD_WORKFLOW_ID = env.str("VOD_WORKFLOW_ID", default="")
VOD_STORAGE_LOCATION = env.str("VOD_STORAGE_LOCATION", default="")
VOD_CALLBACK_URL = env.str("VOD_CALLBACK_URL", default="")
VOD_CALLBACK_AUTH_KEYS = env.list("VOD_CALLBACK_AUTH_KEYS", default=[])
# VOD's event bodies are small JSON (a few KB with every stream of a transcode): anything
# larger is refused (413) before it is stored.
VOD_CALLBACK_MAX_BYTES = env.int("VOD_CALLBACK_MAX_BYTES", default=65536)
# Deliveries refused for their signature, per sending address: past this rate they are
# answered 429 and not stored (a flood of unsigned POSTs cannot fill the database).
VOD_CALLBACK_REFUSED_RATE = env_rate("VOD_CALLBACK_REFUSED_RATE", "30/minute")
# How long refused deliveries are kept (manage.py vod_events_prune), in days.
VOD_EVENTS_REFUSED_KEEP_DAYS = env.int("VOD_EVENTS_REFUSED_KEEP_DAYS", default=30)
# How far X-VOD-TIMESTAMP may be from our clock, in seconds.
VOD_CALLBACK_MAX_AGE = env.int("VOD_CALLBACK_MAX_AGE", default=300)
# How far SearchMedia's index may trail creation, in seconds: vod_sync takes "not found" as
# proof only for images and attached media older than this. VOD documents a short delay and
# no figure; five minutes is well past what anyone reports, and under vod_sync's grace.
VOD_SEARCH_LAG_SECONDS = env.int("VOD_SEARCH_LAG_SECONDS", default=300)

# The local sandbox (vodsandbox) instead of Alibaba Cloud: explicit sandbox keys, never the
# credentials chain. A system check refuses it when DEBUG is off.
VOD_SANDBOX = env.bool("VOD_SANDBOX", default=False)

# Content-Security-Policy on every page (django-csp): scripts only from our own static files;
# the upload page's browser talks to OSS (VOD's upload addresses are on aliyuncs.com) or, in
# a local run, to the sandbox on loopback. Inline styles stay allowed: the admin uses them.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],  # blob: the upload page's image previews
    "connect-src": ["'self'", "https://*.aliyuncs.com",
                    *(["http://127.0.0.1:*", "http://localhost:*"] if VOD_SANDBOX else [])],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}}
VOD_SANDBOX_ACCESS_KEY_ID = env.str("VOD_SANDBOX_ACCESS_KEY_ID", default="SandboxDevKeyId0001")
VOD_SANDBOX_ACCESS_KEY_SECRET = env.str(
    "VOD_SANDBOX_ACCESS_KEY_SECRET", default="sandbox-dev-secret-change-me"
)

# API tokens for apps (django-rest-knox): only a SHA-512 digest is stored; the prefix lets
# secret scanners recognise a leaked token.
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.int("API_TOKEN_TTL_DAYS", default=90)),
    "TOKEN_PREFIX": "vodp_",
    "AUTH_HEADER_PREFIX": "Token",
}
# Token logins (POST /api/v1/auth/token/) per client address, on top of django-axes'
# lockout after LOGIN_FAILURE_LIMIT failures (the same count as the login pages').
API_LOGIN_RATE = env_rate("API_LOGIN_RATE", "20/minute")
# How long a token knox accepted is served from the shared cache (uploads/token_cache.py):
# any ORM change of a user or token retires every entry at once; this bounds the rest.
# Only with REDIS_URL: a per-process cache could not hear of another process's revocation.
API_TOKEN_CACHE_SECONDS = env.int("API_TOKEN_CACHE_SECONDS", default=30)

# Federated identity (uploads/oidc/): `Authorization: Bearer <JWT access token>` from an
# OpenID Connect provider. OIDC_ISSUER configures one; OIDC_PROVIDERS (a JSON list of
# {"issuer", "audience", "jwks_url", "username_claim", "email_claim", "algorithms",
# "leeway_seconds"}) several, keys left out taking the OIDC_* values below. None: off.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_AUDIENCE = env.list("OIDC_AUDIENCE", default=[])
OIDC_JWKS_URL = env.str("OIDC_JWKS_URL", default="")
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_EMAIL_CLAIM = env.str("OIDC_EMAIL_CLAIM", default="email")
# Asymmetric algorithms only (RS*, PS*, ES*, EdDSA); HS* and "none" are refused.
OIDC_ALGORITHMS = env.list("OIDC_ALGORITHMS", default=["RS256", "ES256"])
OIDC_LEEWAY_SECONDS = env.int("OIDC_LEEWAY_SECONDS", default=30)
OIDC_PROVIDERS = env.json("OIDC_PROVIDERS", default=[])
# Fetching a provider's discovery document and keys: a short timeout (a request waits on
# it); keys kept this long, refetched for an unknown kid at most once per cooldown, and
# still used this long past their time while the provider cannot be reached.
OIDC_HTTP_TIMEOUT_SECONDS = env.float("OIDC_HTTP_TIMEOUT_SECONDS", default=3.0)
OIDC_JWKS_CACHE_SECONDS = env.int("OIDC_JWKS_CACHE_SECONDS", default=300)
OIDC_JWKS_REFRESH_COOLDOWN_SECONDS = env.int("OIDC_JWKS_REFRESH_COOLDOWN_SECONDS", default=30)
OIDC_JWKS_STALE_SECONDS = env.int("OIDC_JWKS_STALE_SECONDS", default=3600)

# How long an Idempotency-Key is remembered (the IETF draft and Stripe: at least 24 h).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# How long a request waits for another one with the same key that is still running.
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=10.0)
# A key still `running` this long after it was taken belongs to a request that died (a
# killed worker): a retry may take it over. Longer than any request can run.
IDEMPOTENCY_LEASE_SECONDS = env.int("IDEMPOTENCY_LEASE_SECONDS", default=120)

# Key for the audit chain's HMAC; lives outside the database. Required outside DEBUG, for
# every process (gunicorn, commands): a fallback key would sign rows nobody can verify.
AUDIT_KEY = env.str("AUDIT_KEY", default="")
if not AUDIT_KEY and not DEBUG:
    raise environ.ImproperlyConfigured("AUDIT_KEY is required when DJANGO_DEBUG is off.")
# Where audit_verify keeps signed checkpoints of the chain's head: somewhere the database's
# owners cannot write (uploads/audit_checkpoints.py). The local run keeps them under var/.
AUDIT_CHECKPOINT_DIR = env.str("AUDIT_CHECKPOINT_DIR",
                               default=str(BASE_DIR / "var" / "audit-checkpoints"))
# Writers insert audit events unsealed; a sealer chains them in order shortly after
# (uploads/audit_sealer.py): a thread in each process, woken after each commit and every
# AUDIT_SEAL_INTERVAL_SECONDS. AUDIT_SEAL_INLINE seals inside the writer's own transaction
# instead, under the chain's lock: the default on SQLite, whose single writer lock serializes
# writers anyway. audit_verify reports an event left unsealed longer than
# AUDIT_SEAL_MAX_LAG_SECONDS (no sealer running).
AUDIT_SEAL_INLINE = env.bool(
    "AUDIT_SEAL_INLINE", default=DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3")
AUDIT_SEAL_INTERVAL_SECONDS = env.float("AUDIT_SEAL_INTERVAL_SECONDS", default=1.0)
AUDIT_SEAL_MAX_LAG_SECONDS = env.int("AUDIT_SEAL_MAX_LAG_SECONDS", default=300)

# --- Logging: JSON lines with the request id; never the SDK's debug output -------------
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "uploads.middleware.RequestIdLogFilter"},
                "not_429": {"()": "uploads.middleware.TooManyRequestsLogFilter"}},
    "formatters": {
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["not_429"]},
        "urllib3": {"level": "WARNING"},
    },
}

# --- Metrics (GET /metrics, uploads/metrics/, docs/metrics.md) ----------------------------
# Who may scrape: addresses (client_ip(), so NUM_PROXIES applies; CIDRs accepted), loopback
# unless configured; and, when METRICS_TOKEN is set, only with `Authorization: Bearer <it>`.
# Anyone else gets 404. A bad entry stops the process at start, not at the first scrape.
import ipaddress  # noqa: E402

METRICS_ALLOWED_IPS = [str(ipaddress.ip_network(entry, strict=False)) for entry in
                       env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1/32", "::1/128"])]
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
