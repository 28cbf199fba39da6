# One image for every refdesk service and the migration job: `python -m services.<name>`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p shared services refdesk_cli \
    && touch shared/__init__.py services/__init__.py refdesk_cli/__init__.py \
    && pip install . \
    && pip uninstall -y refdesk

# The source tree is what runs (WORKDIR is first on sys.path for `python -m`): it carries the
# Alembic migrations, templates and static files that are not Python packages.
COPY shared ./shared
COPY services ./services
COPY refdesk_cli ./refdesk_cli
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /data --create-home refdesk

USER refdesk

# Services listen on all interfaces inside the container; data, mail and outboxes go to /data.
ENV REFDESK_HOST=0.0.0.0 \
    REFDESK_RUN_DIR=/data \
    HEALTHCHECK_PORT=8081

VOLUME ["/data"]
EXPOSE 8081 8082 8083 8084 8085

HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HEALTHCHECK_PORT'] + '/healthz', timeout=3)"]

CMD ["python", "-m", "services.ingest"]
