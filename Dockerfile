# The service image. The same image runs the API (gunicorn, the default command), the Celery worker,
# Celery beat and the one-shot migration; docker-compose.yml says which.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir insights_api apikit infra accounts insights tagging viewtracking ai_metadata demo \
    && pip install . \
    && pip uninstall -y insights-api
COPY manage.py ./
COPY insights_api ./insights_api
COPY apikit ./apikit
COPY infra ./infra
COPY accounts ./accounts
COPY insights ./insights
COPY tagging ./tagging
COPY viewtracking ./viewtracking
COPY ai_metadata ./ai_metadata
COPY demo ./demo
COPY docker/entrypoint.sh /usr/local/bin/insights-entrypoint
# Static files (Swagger UI, Redoc) are collected into the image; WhiteNoise serves them.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0 \
    && useradd --system --uid 10001 --home-dir /app app

USER app
EXPOSE 8000
ENTRYPOINT ["insights-entrypoint"]
# insights_api/gunicorn.conf.py: gevent processes (WEB_CONCURRENCY, WEB_CONNECTIONS); GUNICORN_CMD_ARGS
# tunes the rest. Access lines come from the app itself (JSON, with the request id), so gunicorn
# writes none.
CMD ["gunicorn", "--config", "insights_api/gunicorn.conf.py", "insights_api.wsgi:application", "--bind", "0.0.0.0:8000"]
