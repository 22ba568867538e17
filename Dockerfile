# One image for web, worker, trainer and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
# The PyPI torch wheel carries CUDA, so the worker uses a GPU when the host gives it one.
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN python manage.py collectstatic --noinput -v 0
EXPOSE 8000
# Daphne refuses socket messages over 65 KiB before the app parses them (4 bytes per character of
# SOCKET_MAX_FRAME_SIZE, 16384, plus slack); the app answers smaller oversized frames with frame_too_large.
CMD ["python", "-m", "daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket-max-message-size", "66560", "chatbot.asgi:application"]
