# The service image: gunicorn serves the API; the same image runs the Celery worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY insights_api ./insights_api
COPY accounts ./accounts
COPY insights ./insights
COPY tagging ./tagging
COPY viewtracking ./viewtracking
COPY ai_metadata ./ai_metadata
COPY manage.py ./
RUN pip install --no-cache-dir . \
    && SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && useradd --system --uid 10001 app
USER app

EXPOSE 8000
# Threads let coalescing followers wait without holding a whole process.
CMD ["gunicorn", "insights_api.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8", "--no-control-socket", "--access-logfile", "-"]
