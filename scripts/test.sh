#!/usr/bin/env bash
# Run the whole suite against the real PostgreSQL and Redis (started here if they are not answering).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

./scripts/services.sh

if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null; then :; else
  echo "note: chromium is not installed; browser tests will be skipped (apt-get install chromium)" >&2
fi

export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
# A queue and channel prefix of this run's own, so parallel runs never take each other's work.
run_id="test-$$-$(date +%s)"
export CELERY_QUEUE="answers-$run_id" TRAINING_QUEUE="training-$run_id" CHANNELS_PREFIX="asgi-$run_id"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export MODELS_DIR=${MODELS_DIR:-$(mktemp -d)}
# The multilingual base converted once (nlu.e5, keyed by the package's release) and shared by runs and
# workers, where `make run` keeps it too.
export E5_CACHE_DIR=${E5_CACHE_DIR:-$PWD/models/base}
export DJANGO_SETTINGS_MODULE=chatbot.settings

"$PY" manage.py collectstatic --noinput -v 0
# Two workers (pytest-xdist) by default, a file to a worker: the live tests spend most of their time
# waiting on processes, so two keep both cores busy. TEST_WORKERS=0 runs in this one process.
exec "$PY" -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
