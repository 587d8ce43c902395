# The all-in-one citylogin app under gunicorn (docs/guides/production.md). Build from the repository
# root: docker build -t citylogin .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin citylogin

WORKDIR /app

# The pinned, hash-checked dependencies first: this layer stays cached until the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md LICENSE ./
COPY common ./common
COPY sessions ./sessions
COPY accounts ./accounts
COPY devices ./devices
COPY relying_parties ./relying_parties
COPY oidc ./oidc
COPY federation ./federation
COPY flows ./flows
COPY operators ./operators
COPY registration ./registration
COPY login_app ./login_app
COPY session_manager ./session_manager
COPY device_manager ./device_manager
COPY citylogin ./citylogin
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /app/.data \
    && chown citylogin:citylogin /app/.data

USER citylogin

# /metrics adds up every worker's samples kept here (deploy/gunicorn.conf.py clears it at start).
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/citylogin-metrics

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]

# citylogin's threaded worker: a slow client holds no thread (docs/guides/production.md, "gunicorn").
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--worker-class", "citylogin.server.gunicorn_worker.ThreadWorker", "--workers", "2", "--threads", "32", "citylogin.app:create_app()"]
