"""Settings for the Broxiva background workers.

Everything external is read from the environment through ``broxiva.env`` helpers, which stop
start-up with an error naming the variable when a value is bad. With no environment at all the
project runs on the embedded defaults: a SQLite file, Redis on 127.0.0.1:6379, local file
storage and the console e-mail backend.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path
from urllib.parse import quote

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from broxiva.env import env_bool, env_float, env_int, env_json, env_list, env_str
from broxiva.policies import apply_overrides, rq_queue_name

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BROXIVA_VAR_DIR", str(BASE_DIR / "var")))

# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG is on.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 (DEBUG only)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- HTTPS ------------------------------------------------------------------------------------
# On by default outside DEBUG (``manage.py check --deploy`` has nothing to say about W004, W008,
# W012, W016); off in DEBUG, where the quick start serves plain http on 127.0.0.1. Behind a proxy
# or load balancer that terminates TLS, set SECURE_PROXY_SSL_HEADER to the header it sets
# (X-Forwarded-Proto, or NAME=value such as X-Forwarded-Ssl=on), or every request looks like http
# and redirects forever. Only trust that header if the proxy always sets or strips it.


def _proxy_ssl_header(raw: str) -> tuple[str, str] | None:
    if not raw:
        return None
    name, sep, value = raw.partition("=")
    name = name.strip().upper().replace("-", "_")
    name = name if name.startswith("HTTP_") else f"HTTP_{name}"
    if not re.fullmatch(r"HTTP_[A-Z0-9_]+", name, flags=re.ASCII) or (sep and not value.strip()):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER={raw!r} is not a header name such as X-Forwarded-Proto.")
    return name, value.strip() or "https"


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_str("SECURE_PROXY_SSL_HEADER"))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Paths served over plain http too (regexes on the path without its leading slash, comma-separated):
# load balancers and uptime checkers probe /health/ inside the network, and a redirect would fail them.
SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT", [r"^health/"])
for _pattern in SECURE_REDIRECT_EXEMPT:
    try:
        re.compile(_pattern)
    except re.error as exc:
        raise ImproperlyConfigured(f"SECURE_REDIRECT_EXEMPT: {_pattern!r} is not a regex: {exc}") from None
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# HSTS: browsers then refuse plain http to this host for that long (only sent on https responses).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "broxiva.apps.BroxivaConfig",
    "fx.apps.FxConfig",
    "translations.apps.TranslationsConfig",
    "products.apps.ProductsConfig",
    "seo.apps.SeoConfig",
    "domains.apps.DomainsConfig",
    "notifications.apps.NotificationsConfig",
]

MIDDLEWARE = [
    # Admits verified tenant hosts to the per-host sitemap paths only (/sitemap.xml, /robots.txt,
    # …) before anything reads request.get_host(); every other path keeps ALLOWED_HOSTS (seo/middleware.py).
    "seo.middleware.TenantHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and dashboard's static files in production (after collectstatic) without
    # a separate web server; a no-op for runserver in DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "broxiva.urls"
DEFAULT_EXCEPTION_REPORTER_FILTER = "broxiva.reporting.SettingsFilter"
WSGI_APPLICATION = "broxiva.wsgi.application"
ASGI_APPLICATION = "broxiva.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "broxiva" / "templates"],
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("STATIC_MANIFEST", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    # Generated sitemaps (seo/, docs/sitemaps.md): files under var/ on the embedded default, an S3
    # bucket (django-storages over boto3) when SITEMAP_S3_BUCKET is set. Both are public:
    # SITEMAP_STORAGE_URL is the base URL readers fetch them from.
    "sitemaps": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("SITEMAP_S3_BUCKET"),
            "region_name": env_str("SITEMAP_S3_REGION") or None,
            "endpoint_url": env_str("SITEMAP_S3_ENDPOINT_URL") or None,
            "access_key": env_str("SITEMAP_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("SITEMAP_S3_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": False,
            "file_overwrite": True,
        },
    }
    if env_str("SITEMAP_S3_BUCKET")
    else {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "sitemaps")},
    },
}

# --- Database ---------------------------------------------------------------------------------
# Unset: a SQLite file (the embedded default). postgres://… in production and in tests.

_database_url = env_str("DATABASE_URL")
if _database_url:
    try:
        _db = dj_database_url.parse(
            _database_url,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            # A persistent connection is pinged before its first use in each request or job, so a
            # backend that died while idle (restart, failover) is replaced instead of failing it.
            conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if _db.get("ENGINE") not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured("DATABASE_URL must be postgres://… or sqlite:///…")
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db.setdefault("TEST", {})["NAME"] = env_str("DATABASE_TEST_NAME") or None
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
DATABASES = {"default": _db}

# --- Redis ------------------------------------------------------------------------------------
# Two logical databases on one server: REDIS_DB (or REDIS_URL) for caches, locks, idempotency
# and rate limits; REDIS_QUEUE_DB for RQ's queues, so flushing a cache can never drop a job.

REDIS_HOST = env_str("REDIS_HOST", "127.0.0.1")
REDIS_PORT = env_int("REDIS_PORT", 6379, minimum=1, maximum=65535)
REDIS_PASSWORD = env_str("REDIS_PASSWORD")
REDIS_DB = env_int("REDIS_DB", 0, minimum=0)
REDIS_QUEUE_DB = env_int("REDIS_QUEUE_DB", 1, minimum=0)
REDIS_SSL = env_bool("REDIS_SSL", False)
_scheme = "rediss" if REDIS_SSL else "redis"
_auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""

# Sentinel (DESIGN.md §2): REDIS_SENTINELS lists the sentinels as host:port,host:port; the master
# they elect for REDIS_SENTINEL_MASTER replaces REDIS_HOST/REDIS_PORT, while REDIS_PASSWORD,
# REDIS_DB, REDIS_QUEUE_DB and REDIS_SSL still apply to it. Unset: a plain server, as before.
def _sentinel_address(entry: str) -> tuple[str, int]:
    host, sep, port = entry.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]:26379
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ImproperlyConfigured(f"REDIS_SENTINELS entry {entry!r} is not host:port.")
    return host, int(port)


REDIS_SENTINELS = [_sentinel_address(entry) for entry in env_list("REDIS_SENTINELS")]
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_PASSWORD = env_str("REDIS_SENTINEL_PASSWORD")  # the sentinels' own (requirepass), if any
if REDIS_SENTINELS:
    if env_str("REDIS_URL"):
        raise ImproperlyConfigured("REDIS_URL cannot be combined with REDIS_SENTINELS: use REDIS_DB / REDIS_PASSWORD.")
    if not REDIS_SENTINEL_MASTER or any(ch.isspace() or ch in "/:@" for ch in REDIS_SENTINEL_MASTER):
        raise ImproperlyConfigured(f"REDIS_SENTINEL_MASTER={REDIS_SENTINEL_MASTER!r} is not a master name.")
    # The URLs name the master instead of an address: broxiva.connections.client_for() asks the
    # sentinels where it is (and again after a failover); nothing dials these URLs directly.
    REDIS_URL = f"{_scheme}://{_auth}{REDIS_SENTINEL_MASTER}/{REDIS_DB}"
    REDIS_QUEUE_URL = f"{_scheme}://{_auth}{REDIS_SENTINEL_MASTER}/{REDIS_QUEUE_DB}"
else:
    REDIS_URL = env_str("REDIS_URL") or f"{_scheme}://{_auth}{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    REDIS_QUEUE_URL = f"{_scheme}://{_auth}{REDIS_HOST}:{REDIS_PORT}/{REDIS_QUEUE_DB}"
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
# Sentinels are asked with short timeouts so that a dead one is skipped quickly, not waited on.
REDIS_SENTINEL_KWARGS = {"socket_connect_timeout": 5, "socket_timeout": 5}
if REDIS_SENTINEL_PASSWORD:
    REDIS_SENTINEL_KWARGS["password"] = REDIS_SENTINEL_PASSWORD

if REDIS_SENTINELS:
    # Django's RedisCache cannot follow a Sentinel failover, and nothing in the project uses
    # Django's cache framework (our caches are broxiva.cache on get_redis()): a per-process
    # LocMemCache keeps django.core.cache working without pinning a master address.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cache",
        }
    }

# --- Queues -----------------------------------------------------------------------------------
# QUEUE_PREFIX namespaces the RQ queue names (RQ keeps its own key layout: rq:queue:<name>,
# rq:job:<id>); empty by default, so the RQ queue for fx-refresh is "fx-refresh".

QUEUE_PREFIX = env_str("QUEUE_PREFIX")
if any(ch.isspace() for ch in QUEUE_PREFIX):
    raise ImproperlyConfigured("QUEUE_PREFIX must not contain whitespace.")

# QUEUE_OVERRIDES tunes a deployment without a code change, e.g.
# {"product-sync": {"timeout": 1800}, "email": {"attempts": 5}}.
QUEUE_OVERRIDES = env_json("QUEUE_OVERRIDES", {})
try:
    _policies = apply_overrides(QUEUE_OVERRIDES)
except ValueError as exc:
    raise ImproperlyConfigured(f"QUEUE_OVERRIDES: {exc}") from None

if REDIS_SENTINELS:
    # django-rq's own Sentinel options (django_rq.connection_utils.get_redis_connection).
    # SENTINEL_KWARGS is not among django-rq's "connection params", so the few django-rq screens
    # that rebuild a connection from those alone (cron views, prometheus) lose a sentinel password.
    _rq_connection = {
        "SENTINELS": REDIS_SENTINELS,
        "MASTER_NAME": REDIS_SENTINEL_MASTER,
        "DB": REDIS_QUEUE_DB,
        "PASSWORD": REDIS_PASSWORD or None,
        "SENTINEL_KWARGS": REDIS_SENTINEL_KWARGS,
        "CONNECTION_KWARGS": {"ssl": True} if REDIS_SSL else {},
    }
else:
    _rq_connection = {"URL": REDIS_QUEUE_URL}
RQ_QUEUES = {
    rq_queue_name(name, QUEUE_PREFIX): {**_rq_connection, "DEFAULT_TIMEOUT": policy.timeout}
    for name, policy in _policies.items()
}
RQ = {
    "COMMIT_MODE": "on_db_commit",
    "WORKER_CLASS": "broxiva.worker.BroxivaWorker",
    "SCHEDULER_CLASS": "broxiva.scheduler.UTCScheduler",
}
# Off: the dashboard's one entrance is /django-rq/, for operators only (broxiva.dashboard).
RQ_SHOW_ADMIN_LINK = False
# Finished and failed jobs also expire by time, as a safety net under the count-based
# retention (keep the last N) of DESIGN.md §4.
RQ_RESULT_TTL = env_int("RQ_RESULT_TTL", 7 * 24 * 3600, minimum=1)
RQ_FAILURE_TTL = env_int("RQ_FAILURE_TTL", 30 * 24 * 3600, minimum=1)
# Transactional outbox (broxiva.outbox): the relay pushes rows older than the grace period (the
# commit hook normally pushes within milliseconds), at most OUTBOX_RELAY_LIMIT rows a run.
OUTBOX_RELAY_GRACE_SECONDS = env_int("OUTBOX_RELAY_GRACE_SECONDS", 30, minimum=0)
OUTBOX_RELAY_LIMIT = env_int("OUTBOX_RELAY_LIMIT", 10_000, minimum=1)
# Replication before a row is deleted (broxiva.outbox, docs/outbox.md): with OUTBOX_WAIT_REPLICAS > 0
# a pushed batch's rows are deleted only once that many replicas acknowledged it (Redis WAIT, at
# most OUTBOX_WAIT_TIMEOUT_MS); otherwise they stay for the relay. 0 = delete once the master took it.
OUTBOX_WAIT_REPLICAS = env_int("OUTBOX_WAIT_REPLICAS", 0, minimum=0)
OUTBOX_WAIT_TIMEOUT_MS = env_int("OUTBOX_WAIT_TIMEOUT_MS", 500, minimum=1)

# --- E-mail -----------------------------------------------------------------------------------

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # implicit TLS (port 465); EMAIL_USE_TLS is STARTTLS
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS (STARTTLS) or EMAIL_USE_SSL (implicit TLS), not both.")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Broxiva <noreply@localhost>")

# --- Notifications: e-mail and push -----------------------------------------------------------
# notifications/ (docs/notifications.md). E-mail uses the EMAIL_* settings above. Push channels
# without their credentials fail each delivery with a "not configured" reason (no retry).

# A row still "sending" after this long lost its worker mid-send: the sweep fails it (never re-sends).
NOTIFICATIONS_STALE_SENDING_MINUTES = env_int("NOTIFICATIONS_STALE_SENDING_MINUTES", 10, minimum=2)
# Web Push (RFC 8030/8291/8292): the VAPID private key as the raw URL-safe base64 that key
# generators print (a secret: WEBPUSH_VAPID_PRIVATE_KEY_FILE works too), and the contact the push
# services may use (mailto: or https:).
WEBPUSH_VAPID_PRIVATE_KEY = env_str("WEBPUSH_VAPID_PRIVATE_KEY")
WEBPUSH_VAPID_SUBJECT = env_str("WEBPUSH_VAPID_SUBJECT")
if WEBPUSH_VAPID_PRIVATE_KEY:
    import base64 as _base64
    import binascii as _binascii

    try:
        _raw_key = _base64.urlsafe_b64decode(WEBPUSH_VAPID_PRIVATE_KEY + "=" * (-len(WEBPUSH_VAPID_PRIVATE_KEY) % 4))
    except (ValueError, _binascii.Error):
        _raw_key = b""
    if len(_raw_key) != 32:
        raise ImproperlyConfigured("WEBPUSH_VAPID_PRIVATE_KEY must be a raw P-256 private key in URL-safe base64 "
                                   "(43 characters, as `vapid --gen` / web-push generate-vapid-keys print it).")
    if not WEBPUSH_VAPID_SUBJECT.startswith(("mailto:", "https://")):
        raise ImproperlyConfigured("WEBPUSH_VAPID_SUBJECT must be a mailto: or https:// contact when "
                                   "WEBPUSH_VAPID_PRIVATE_KEY is set.")
# Seconds a push service keeps an undelivered message (the TTL header).
WEBPUSH_TTL = env_int("WEBPUSH_TTL", 24 * 3600, minimum=0, maximum=28 * 24 * 3600)
WEBPUSH_TIMEOUT = env_float("WEBPUSH_TIMEOUT", 10.0, minimum=0.05)
# FCM HTTP v1: the service account's JSON file (its private key signs the OAuth assertion), the
# project (default: the service account's project_id), and FCM_URL to point at another server.
FCM_CREDENTIALS_FILE = env_str("FCM_CREDENTIALS_FILE")
FCM_PROJECT_ID = env_str("FCM_PROJECT_ID")
FCM_URL = env_str("FCM_URL")
if FCM_URL and not FCM_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("FCM_URL must be an http(s):// URL.")
FCM_TIMEOUT = env_float("FCM_TIMEOUT", 10.0, minimum=0.05)

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "text"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "rq.worker": {"level": LOG_LEVEL},
        # urllib3 logs each request line at DEBUG, query string included: provider keys travel
        # there (OXR's app_id, Fixer's access_key), so it never logs below INFO.
        "urllib3": {"level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
    },
}

# --- Coordination -----------------------------------------------------------------------------
# Locks, idempotency claims and rate limits (broxiva.locks / .idempotency / .ratelimit).
# A claim stays "processing" at most this long, so a processor that died does not block the
# sender's retries for the claim's whole 24 h; keep it above the longest job's timeout.
IDEMPOTENCY_PROCESSING_TTL = env_int("IDEMPOTENCY_PROCESSING_TTL", 3600, minimum=1)
# A job deferred by a rate limit or an upstream 429 does not spend an attempt; after this many
# deferrals it is failed instead, so a limit that never clears cannot loop it forever.
JOB_MAX_DEFERRALS = env_int("JOB_MAX_DEFERRALS", 100, minimum=1)

# --- Outbound HTTP ----------------------------------------------------------------------------
# broxiva.http refuses URLs from tenants (webhooks, domains, shop URLs, feeds) that resolve to
# loopback, private, link-local, CGNAT, multicast or reserved addresses. These networks
# (comma-separated CIDRs, e.g. "10.20.0.0/16" or "127.0.0.0/8" in tests) are allowed anyway.
OUTBOUND_ALLOWED_NETWORKS = env_list("OUTBOUND_ALLOWED_NETWORKS")
for _net in OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_net)
    except ValueError:
        raise ImproperlyConfigured(
            f"OUTBOUND_ALLOWED_NETWORKS entry {_net!r} is not a network (a CIDR without host bits).") from None

# --- Notifications: webhooks -----------------------------------------------------------------
# Outbound webhooks (notifications/, docs/webhooks.md): Standard Webhooks signing, every URL through
# the destination guard, retries on the webhook-delivery queue's policy.
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 15.0, minimum=0.1)  # one attempt, connect to last byte
WEBHOOK_SECRET_ROTATION_HOURS = env_int("WEBHOOK_SECRET_ROTATION_HOURS", 24, minimum=0)  # both secrets sign
WEBHOOK_DISABLE_AFTER_DAYS = env_int("WEBHOOK_DISABLE_AFTER_DAYS", 5, minimum=1)
# A receiver's Retry-After (429/503) defers without spending an attempt, but never further than this.
WEBHOOK_RETRY_AFTER_MAX = env_int("WEBHOOK_RETRY_AFTER_MAX", 3600, minimum=1)
# ...and a delivery deferred this many times fails like an exhausted one.
WEBHOOK_MAX_DEFERRALS = env_int("WEBHOOK_MAX_DEFERRALS", 50, minimum=1)
# Concurrency of one dispatch job: sends in flight at once (threads), and rows claimed per round.
# Threads only make HTTP calls; the job's one database connection claims and records in bulk.
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 128, minimum=1, maximum=512)
WEBHOOK_BATCH_SIZE = env_int("WEBHOOK_BATCH_SIZE", 256, minimum=1, maximum=5000)

# --- FX ---------------------------------------------------------------------------------------
# Exchange rates (fx/, docs/fx.md). Provider URLs and keys are read when a provider runs,
# so an override (a test's settings fixture) takes effect. Keys are secrets: *_FILE works too.

FX_ECB_URL = env_str("FX_ECB_URL", "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml")
OPEN_EXCHANGE_RATES_URL = env_str("OPEN_EXCHANGE_RATES_URL", "https://openexchangerates.org/api")
OPEN_EXCHANGE_RATES_APP_ID = env_str("OPEN_EXCHANGE_RATES_APP_ID")
# Calls a month the plan allows (free plan: 1,000): a tenth usable at once, the rest paced evenly
# (never more than this in any 31 days); 0 = no limit.
OPEN_EXCHANGE_RATES_MONTHLY_BUDGET = env_int("OPEN_EXCHANGE_RATES_MONTHLY_BUDGET", 1000, minimum=0)
# The free plan only serves plain HTTP (https gives error 105): set http://data.fixer.io/api for it.
FIXER_URL = env_str("FIXER_URL", "https://data.fixer.io/api")
FIXER_API_KEY = env_str("FIXER_API_KEY")
FIXER_MONTHLY_BUDGET = env_int("FIXER_MONTHLY_BUDGET", 100, minimum=0)
# The chain, tried in order; a provider without its key is skipped, so the default means "those
# with keys first, ECB last".
FX_PROVIDER_NAMES = ("openexchangerates", "fixer", "ecb")
FX_PROVIDERS = env_list("FX_PROVIDERS", FX_PROVIDER_NAMES)
if not FX_PROVIDERS or any(p not in FX_PROVIDER_NAMES for p in FX_PROVIDERS):
    raise ImproperlyConfigured(f"FX_PROVIDERS must list some of {', '.join(FX_PROVIDER_NAMES)}.")
# Every refresh stores rates for all of these bases, from one provider response (cross rates).
FX_BASE_CURRENCIES = [code.upper() for code in env_list("FX_BASE_CURRENCIES", ["USD", "EUR", "GBP"])]
if not FX_BASE_CURRENCIES or any(len(c) != 3 or not c.isalpha() or not c.isascii() for c in FX_BASE_CURRENCIES):
    raise ImproperlyConfigured("FX_BASE_CURRENCIES must be a comma-separated list of ISO 4217 codes.")
# A rate moving more than this from the last published one is stored but held back (0 = off).
FX_MAX_CHANGE_PERCENT = env_float("FX_MAX_CHANGE_PERCENT", 10.0, minimum=0)
# convert() refuses a rate older than this once it has also missed a publication (fx.publication).
FX_MAX_AGE_HOURS = env_int("FX_MAX_AGE_HOURS", 96, minimum=1)
FX_ROUNDING = env_str("FX_ROUNDING", "ROUND_HALF_UP", choices=(
    "ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_HALF_DOWN", "ROUND_UP", "ROUND_DOWN", "ROUND_CEILING",
    "ROUND_FLOOR", "ROUND_05UP",
))
FX_HTTP_TIMEOUT = env_float("FX_HTTP_TIMEOUT", 10.0, minimum=0.05)
FX_HTTP_CONNECT_TIMEOUT = env_float("FX_HTTP_CONNECT_TIMEOUT", 5.0, minimum=0.05)
# Transient failures of one provider are retried this many times before the chain moves on.
FX_PROVIDER_RETRIES = env_int("FX_PROVIDER_RETRIES", 1, minimum=0)
FX_PROVIDER_RETRY_DELAY = env_float("FX_PROVIDER_RETRY_DELAY", 1.0, minimum=0)
# The whole chain stops trying after this many seconds (under the fx-refresh job timeout).
FX_REFRESH_DEADLINE = env_float("FX_REFRESH_DEADLINE", 40.0, minimum=1)
# convert() keeps the rate table in process and checks Redis for a newer one at most this often.
FX_LOCAL_CACHE_SECONDS = env_float("FX_LOCAL_CACHE_SECONDS", 5.0, minimum=0)

# --- Products: sources -----------------------------------------------------------------------
# The Shopify and BigCommerce source modules (products/sources/, docs/products.md), read when a
# source runs so a test's settings override takes effect.
# Shopify's GraphQL Admin API version (a quarterly "YYYY-MM"; Shopify supports each for a year).
SHOPIFY_API_VERSION = env_str("SHOPIFY_API_VERSION", "2025-10")
if not re.fullmatch(r"[0-9]{4}-[0-9]{2}|unstable", SHOPIFY_API_VERSION):
    raise ImproperlyConfigured(f"SHOPIFY_API_VERSION={SHOPIFY_API_VERSION!r} is not a version like 2025-10.")
# Products a page asks for (at most 250). A query may cost at most 1,000 points and each product
# with SHOPIFY_VARIANTS_PER_PRODUCT variants costs about that many + 3, so the page is cut to fit.
SHOPIFY_PAGE_SIZE = env_int("SHOPIFY_PAGE_SIZE", 50, minimum=1, maximum=250)
SHOPIFY_VARIANTS_PER_PRODUCT = env_int("SHOPIFY_VARIANTS_PER_PRODUCT", 100, minimum=1, maximum=250)
# Waiting for Shopify's cost bucket to refill up to this long happens in the job; a longer wait
# raises SourceThrottled, which defers the job instead of holding a worker.
SHOPIFY_MAX_THROTTLE_WAIT = env_float("SHOPIFY_MAX_THROTTLE_WAIT", 10.0, minimum=0)
# BigCommerce's API origin, used when a connection's base URL is blank (tests point it elsewhere).
BIGCOMMERCE_API_URL = env_str("BIGCOMMERCE_API_URL", "https://api.bigcommerce.com")
BIGCOMMERCE_PAGE_SIZE = env_int("BIGCOMMERCE_PAGE_SIZE", 250, minimum=1, maximum=250)
# (Every source's call timeout and largest page: PRODUCT_SYNC_HTTP_TIMEOUT, PRODUCT_SYNC_MAX_PAGE_BYTES.)

# --- Products ---------------------------------------------------------------------------------
# Catalogue sync (products/, docs/products.md).
# A delta reads products changed since the last successful sync's start minus this overlap, so
# clock skew between us and a shop loses nothing.
PRODUCT_SYNC_OVERLAP_SECONDS = env_int("PRODUCT_SYNC_OVERLAP_SECONDS", 300, minimum=0)
# Products per page asked of a REST source (WooCommerce allows at most 100).
PRODUCT_SYNC_PAGE_SIZE = env_int("PRODUCT_SYNC_PAGE_SIZE", 100, minimum=1, maximum=100)
# A job stops after the page that passes this many seconds (never more than 2/3 of the queue's
# timeout) and enqueues its continuation from the saved cursor.
PRODUCT_SYNC_JOB_BUDGET_SECONDS = env_float("PRODUCT_SYNC_JOB_BUDGET_SECONDS", 540.0, minimum=0)
# One sync per connection at a time: the lock's lease (renewed while the sync runs; a killed
# worker's lock frees itself after it). A second sync waits PRODUCT_SYNC_LOCK_WAIT_MS for it, then
# is deferred for PRODUCT_SYNC_LOCK_RETRY_SECONDS.
PRODUCT_SYNC_LOCK_TTL_SECONDS = env_int("PRODUCT_SYNC_LOCK_TTL_SECONDS", 60, minimum=1)
PRODUCT_SYNC_LOCK_WAIT_MS = env_int("PRODUCT_SYNC_LOCK_WAIT_MS", 5000, minimum=0)
PRODUCT_SYNC_LOCK_RETRY_SECONDS = env_int("PRODUCT_SYNC_LOCK_RETRY_SECONDS", 30, minimum=1)
PRODUCT_SYNC_HTTP_TIMEOUT = env_float("PRODUCT_SYNC_HTTP_TIMEOUT", 30.0, minimum=0.05)
PRODUCT_SYNC_MAX_PAGE_BYTES = env_int("PRODUCT_SYNC_MAX_PAGE_BYTES", 20 * 1024 * 1024, minimum=1024)
# Inbound webhooks (/webhooks/<source>/<connection id>/): larger bodies get 413.
PRODUCT_WEBHOOK_MAX_BYTES = env_int("PRODUCT_WEBHOOK_MAX_BYTES", 1024 * 1024, minimum=1024)
# BigCommerce signs nothing: its webhooks are created with this header carrying the connection's
# webhook secret (a custom feed's webhooks are signed like WooCommerce's, see docs/products.md).
PRODUCT_WEBHOOK_BIGCOMMERCE_HEADER = env_str("PRODUCT_WEBHOOK_BIGCOMMERCE_HEADER", "X-Broxiva-Webhook-Token")

# --- Domains ----------------------------------------------------------------------------------
# Custom-domain verification (domains/, docs/domains.md).
# Nameservers asked for the DNS checks and for the HTTP checks' addresses: comma-separated "ip" or
# "ip:port"; unset, the system's resolvers. Timeout per server and lifetime per lookup, seconds.
DNS_NAMESERVERS = env_list("DNS_NAMESERVERS")
DNS_TIMEOUT = env_float("DNS_TIMEOUT", 2.0, minimum=0.05)
DNS_LIFETIME = env_float("DNS_LIFETIME", 5.0, minimum=0.05)
# dns_cname: the name a tenant's domain must be a CNAME to (or, at an apex, resolve like).
DOMAIN_CNAME_TARGET = env_str("DOMAIN_CNAME_TARGET", "domains.broxiva.com")
# A domain still pending this many days after it was added fails.
DOMAIN_VERIFICATION_EXPIRY_DAYS = env_int("DOMAIN_VERIFICATION_EXPIRY_DAYS", 7, minimum=1)
# Ports the http_file and meta_tag checks connect to (tests point them at local servers).
DOMAIN_HTTP_PORT = env_int("DOMAIN_HTTP_PORT", 80, minimum=1, maximum=65535)
DOMAIN_HTTPS_PORT = env_int("DOMAIN_HTTPS_PORT", 443, minimum=1, maximum=65535)
# Checks one domain_verify_job runs at once: its own and up to N-1 sibling jobs still waiting in the
# queue, taken out of it (docs/domains.md). 1 = one check per job.
DOMAIN_CHECK_BATCH = env_int("DOMAIN_CHECK_BATCH", 1, minimum=1, maximum=100)

# --- Sitemaps (seo) ---------------------------------------------------------------------------
# Per-tenant, per-locale sitemaps (seo/, docs/sitemaps.md), stored in STORAGES["sitemaps"].
# The public base URL of that storage (unset: served by this project under /sitemaps/).
SITEMAP_STORAGE_URL = env_str("SITEMAP_STORAGE_URL")
SITEMAP_MAX_URLS = env_int("SITEMAP_MAX_URLS", 45000, minimum=1, maximum=50000)
# A tenant's storefront host when it has no verified custom domain ({slug} is the tenant's slug).
STOREFRONT_HOST_TEMPLATE = env_str("STOREFRONT_HOST_TEMPLATE", "{slug}.broxiva.com")
# IndexNow (ping_search_engines): the key served at /<key>.txt on each tenant host.
INDEXNOW_KEY = env_str("INDEXNOW_KEY")
INDEXNOW_URL = env_str("INDEXNOW_URL", "https://api.indexnow.org/indexnow")
# Storefront paths, each a str.format pattern: {locale}; a product's {handle} (its id when it has
# none), {id}, {external_id}; a category's {id}, {external_id}, {slug} (its name slugified); a
# page's {slug}. JSON object to override some of them.
STOREFRONT_URL_PATTERNS = {
    "product": "/{locale}/products/{handle}",
    "category": "/{locale}/categories/{id}-{slug}",
    "page": "/{locale}/pages/{slug}",
    **env_json("STOREFRONT_URL_PATTERNS", {}),  # type: ignore[dict-item]
}
# Uncompressed bytes per sitemap file: each stays under it (the protocol's 50 MB, 52,428,800).
# The writer starts a new file before one more <url> would reach it (sizes are counted exactly).
SITEMAP_MAX_BYTES = env_int("SITEMAP_MAX_BYTES", 50 * 1024 * 1024, minimum=64 * 1024, maximum=50 * 1024 * 1024)
# Sitemaps per index file (the protocol's limit): a tenant with more gets sitemap-2.xml, ….
SITEMAP_INDEX_MAX_ENTRIES = env_int("SITEMAP_INDEX_MAX_ENTRIES", 50000, minimum=1, maximum=50000)
# Rows read per query (products, their translations) while streaming a tenant's catalogue.
SITEMAP_CHUNK_SIZE = env_int("SITEMAP_CHUNK_SIZE", 2000, minimum=1, maximum=50000)

# --- Translations -----------------------------------------------------------------------------
# LLM translations (translations/, docs/translations.md). Provider URLs and keys are read when a
# provider runs, so an override takes effect. Keys are secrets: *_FILE works too.

ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_MODEL = env_str("ANTHROPIC_MODEL", "claude-sonnet-4-5")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
# Also any OpenAI-compatible server (a local model behind vLLM, Ollama, llama.cpp...).
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "https://api.openai.com/v1")
# Calls per minute each provider may receive from the whole fleet (0 = no pacing).
ANTHROPIC_RPM = env_int("ANTHROPIC_RPM", 50, minimum=0)
OPENAI_RPM = env_int("OPENAI_RPM", 500, minimum=0)
TRANSLATION_PROVIDER_NAMES = ("anthropic", "openai")
# The chain, tried in order; a provider without its key is skipped. With no key at all the
# pseudo-locale provider answers (marked text, rows flagged for review).
TRANSLATION_PROVIDERS = env_list("TRANSLATION_PROVIDERS", TRANSLATION_PROVIDER_NAMES)
if any(p not in TRANSLATION_PROVIDER_NAMES for p in TRANSLATION_PROVIDERS):
    raise ImproperlyConfigured(f"TRANSLATION_PROVIDERS must list some of {', '.join(TRANSLATION_PROVIDER_NAMES)}.")
TRANSLATION_HTTP_TIMEOUT = env_float("TRANSLATION_HTTP_TIMEOUT", 120.0, minimum=0.05)
# Input tokens one call may carry (estimated), and segments per call: bigger jobs are chunked.
TRANSLATION_MAX_INPUT_TOKENS = env_int("TRANSLATION_MAX_INPUT_TOKENS", 6000, minimum=100)
TRANSLATION_MAX_SEGMENTS_PER_CALL = env_int("TRANSLATION_MAX_SEGMENTS_PER_CALL", 100, minimum=1)
TRANSLATION_MAX_OUTPUT_TOKENS = env_int("TRANSLATION_MAX_OUTPUT_TOKENS", 16000, minimum=100)
# A second LLM call scoring each result 0-100; below the threshold a row needs review.
TRANSLATION_QUALITY_JUDGE = env_bool("TRANSLATION_QUALITY_JUDGE", False)
TRANSLATION_QUALITY_THRESHOLD = env_int("TRANSLATION_QUALITY_THRESHOLD", 70, minimum=0, maximum=100)
# translate_catalog() goes through the providers' batch APIs above this many waiting segments.
TRANSLATION_BATCH_MIN = env_int("TRANSLATION_BATCH_MIN", 500, minimum=1)
# Length ratio (translation / source characters) bounds; per-pair overrides as JSON,
# e.g. {"en:ja": [0.2, 1.5]} (keys are the languages, "source:target").
TRANSLATION_LENGTH_RATIO = (
    env_float("TRANSLATION_LENGTH_RATIO_MIN", 0.3, minimum=0),
    env_float("TRANSLATION_LENGTH_RATIO_MAX", 3.0, minimum=0),
)
TRANSLATION_LENGTH_RATIOS = env_json("TRANSLATION_LENGTH_RATIOS", {})

# --- Operations -------------------------------------------------------------------------------
# Queue health (/health/queues, broxiva.health), alerts (broxiva.alerts), crash recovery
# (broxiva.recovery) and logs (broxiva.logs). docs/operations.md explains each knob.

# Bearer token for /health/queues, /health/queue/<name> (open when unset) and /metrics (staff-only
# when neither token is set). Secrets: also readable from HEALTH_TOKEN_FILE / METRICS_TOKEN_FILE.
HEALTH_TOKEN = env_str("HEALTH_TOKEN")
METRICS_TOKEN = env_str("METRICS_TOKEN") or HEALTH_TOKEN
# Thresholds of DESIGN.md §6: a value above "warning" makes a queue warning, above "critical" critical.
HEALTH_WAITING_WARNING = env_int("HEALTH_WAITING_WARNING", 1000, minimum=0)
HEALTH_WAITING_CRITICAL = env_int("HEALTH_WAITING_CRITICAL", 5000, minimum=0)
HEALTH_FAILED_WARNING = env_int("HEALTH_FAILED_WARNING", 50, minimum=0)
HEALTH_FAILED_CRITICAL = env_int("HEALTH_FAILED_CRITICAL", 200, minimum=0)
HEALTH_OLDEST_WARNING_SECONDS = env_int("HEALTH_OLDEST_WARNING_SECONDS", 3600, minimum=0)
HEALTH_OLDEST_CRITICAL_SECONDS = env_int("HEALTH_OLDEST_CRITICAL_SECONDS", 6 * 3600, minimum=0)
# A worker whose last heartbeat is older than this is not counted (a SIGKILLed worker's key lingers).
HEALTH_WORKER_STALE_SECONDS = env_int("HEALTH_WORKER_STALE_SECONDS", 120, minimum=10)
# The outbox (broxiva.outbox) is drained every minute: a job recorded in PostgreSQL that Redis has
# not taken for longer than this means the relay is not running or Redis refuses it.
HEALTH_OUTBOX_WARNING_SECONDS = env_int("HEALTH_OUTBOX_WARNING_SECONDS", 180, minimum=0)
HEALTH_OUTBOX_CRITICAL_SECONDS = env_int("HEALTH_OUTBOX_CRITICAL_SECONDS", 900, minimum=0)
for _warning, _critical in (
    ("HEALTH_WAITING_WARNING", "HEALTH_WAITING_CRITICAL"),
    ("HEALTH_FAILED_WARNING", "HEALTH_FAILED_CRITICAL"),
    ("HEALTH_OLDEST_WARNING_SECONDS", "HEALTH_OLDEST_CRITICAL_SECONDS"),
    ("HEALTH_OUTBOX_WARNING_SECONDS", "HEALTH_OUTBOX_CRITICAL_SECONDS"),
):
    if globals()[_warning] > globals()[_critical]:
        raise ImproperlyConfigured(f"{_warning} must not be above {_critical}.")

# Alert channels: e-mail through EMAIL_BACKEND, and/or a JSON POST with a Slack-compatible "text"
# field. ALERT_WEBHOOK_URL is a secret (Slack's embed a token): also ALERT_WEBHOOK_URL_FILE.
ALERT_EMAILS = env_list("ALERT_EMAILS")
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL")
if ALERT_WEBHOOK_URL and not ALERT_WEBHOOK_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("ALERT_WEBHOOK_URL must be an http(s):// URL.")
ALERT_WEBHOOK_TIMEOUT = env_int("ALERT_WEBHOOK_TIMEOUT", 5, minimum=1)
# While a queue stays critical, remind every this many seconds (0: never).
ALERT_REMINDER_INTERVAL = env_int("ALERT_REMINDER_INTERVAL", 3600, minimum=0)

# Crash recovery (BroxivaWorker): a job whose worker died is found once its heartbeat lease
# (monitoring interval + grace) has run out, by the next registry maintenance of any worker.
# Defaults: lease 10 + 30 s, maintenance every 30 s -> found within ~70 s (RQ's defaults: ~11 min).
WORKER_MAINTENANCE_INTERVAL = env_int("WORKER_MAINTENANCE_INTERVAL", 30, minimum=1)
WORKER_JOB_MONITORING_INTERVAL = env_int("WORKER_JOB_MONITORING_INTERVAL", 10, minimum=1)
WORKER_HEARTBEAT_GRACE = env_int("WORKER_HEARTBEAT_GRACE", 30, minimum=1)
# Shutdown (broxiva.worker): after SIGTERM the current job has this many seconds to finish before
# it is put back at the front of its queue (0: wait for it however long it takes, RQ's behaviour).
# Give the process manager a stop timeout a few seconds longer (compose: stop_grace_period).
WORKER_SHUTDOWN_GRACE = env_int("WORKER_SHUTDOWN_GRACE", 20, minimum=0)

# Logs: every line written while a job runs carries job_id, queue, attempt and tenant.
# LOG_FORMAT=json writes one JSON object per line (for log shippers).
LOG_FORMAT = env_str("LOG_FORMAT", "text", choices=("text", "json"))
LOGGING["filters"] = {"job_context": {"()": "broxiva.logs.JobContextFilter"}}
LOGGING["formatters"]["text"] = {"()": "broxiva.logs.TextFormatter"}
LOGGING["formatters"]["json"] = {"()": "broxiva.logs.JsonFormatter"}
LOGGING["handlers"]["console"]["filters"] = ["job_context"]
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT

# Error tracking (broxiva.errors, docs/operations.md): SENTRY_DSN (also SENTRY_DSN_FILE) turns on
# sentry-sdk with its Django and RQ integrations in every process; unset, the SDK is never
# initialised and nothing is sent. Events are tagged with the job's id, queue and attempt and
# carry no secret (settings' values, URL credentials, local variables, bodies and PII are left out).
SENTRY_DSN = env_str("SENTRY_DSN")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "production")
SENTRY_RELEASE = env_str("SENTRY_RELEASE")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0, maximum=1.0)
if SENTRY_DSN:
    from broxiva.errors import init_sentry

    init_sentry(SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=SENTRY_RELEASE,
                traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE, settings_module=sys.modules[__name__])
