#!/usr/bin/env bash
# Set up the database and demo store, then run the server (and a worker when REDIS_URL is set).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PUBLIC_URL=${PUBLIC_URL:-http://localhost:$PORT}
# The demo store calls its own order system on this machine (loopback http): development only.
export ACTIONS_ALLOW_PRIVATE_HOSTS=${ACTIONS_ALLOW_PRIVATE_HOSTS:-1}

"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py seed_demo ${DEMO_AGENT_PASSWORD:+--agent-password "$DEMO_AGENT_PASSWORD"}

mkdir -p var
train_pid=""
if [ "${TRAIN_DEMO_MODELS:-1}" = 1 ]; then
  classifiers=1 responder=1
  "$PY" manage.py models demo --check intent sentiment >/dev/null && classifiers=0
  "$PY" manage.py models demo --check responder >/dev/null && responder=0
  if [ $classifiers = 1 ] || [ $responder = 1 ]; then
    echo "Training the demo store's models in the background (progress: tail -f var/train.log): the intent and"
    echo "sentiment models in about two minutes, then the responder, which the gate lets answer where it wins."
    echo "Until they are ready the bot answers from the knowledge base alone."
    # the intent model first: it picks the answers; the sentiment model (a probe, seconds) follows; then the
    # responder, trained as a candidate and judged by the gate against the answers without it
    (
      if [ $classifiers = 1 ]; then "$PY" manage.py train_nlu demo && "$PY" manage.py train_sentiment; fi
      if [ $responder = 1 ]; then
        RESPONDER_MAX_TRAIN_MINUTES=${DEMO_RESPONDER_MINUTES:-5} "$PY" manage.py retrain demo --kind responder --here
      fi
    ) > var/train.log 2>&1 &
    train_pid=$!
  fi
fi

pids=()
trap 'kill "${pids[@]}" $train_pid 2>/dev/null || true' EXIT INT TERM
if [ -n "${REDIS_URL:-}" ]; then
  echo "REDIS_URL is set: starting a Celery worker beside the web server"
  "$PY" -m celery -A chatbot worker -P prefork -c 1 -Q "${CELERY_QUEUE:-answers},${TRAINING_QUEUE:-training}" -B -s var/celerybeat-schedule -l info &
  pids+=($!)
else
  echo "No REDIS_URL: one process; the web server answers visitors itself"
fi
echo
echo "  Demo store:     $PUBLIC_URL/demo/"
echo "  Agent console:  $PUBLIC_URL/console/  (the demo agent's login is printed above)"
echo "  Admin:          $PUBLIC_URL/admin/  (python manage.py createsuperuser)"
echo
"$PY" -m daphne -b "$HOST" -p "$PORT" --websocket-max-message-size $(( ${SOCKET_MAX_FRAME_SIZE:-16384} * 4 + 1024 )) chatbot.asgi:application &
pids+=($!)
wait -n "${pids[@]}"
