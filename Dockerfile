# One image for the three processes of the Procfile; compose.yaml (or any orchestrator) picks the
# process with its command. Runtime configuration comes from the environment (docs/deploy.md).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays root-owned (read-only to the processes); var/ (file sitemaps) and the static
# files (the web line runs collectstatic again at start) belong to the unprivileged user.
COPY . .
RUN useradd --create-home --uid 10001 broxiva && mkdir -p var staticfiles && chown broxiva:broxiva var staticfiles
USER broxiva

# collectstatic needs no database or Redis, only a SECRET_KEY for settings to load.
RUN SECRET_KEY=collectstatic-at-build-only python manage.py collectstatic --noinput

EXPOSE 8000
# The Procfile's web line (exec: gunicorn replaces the shell and receives the stop signal).
CMD python manage.py migrate --noinput && python manage.py collectstatic --noinput && exec gunicorn broxiva.wsgi --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_CONCURRENCY:-2}
