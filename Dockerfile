# The service as a container: `podman build -t todo-api .` (or docker build); docs/deploying.md.
# Both stages start from Debian's slim image with Debian's own Python (3.13 on trixie).

FROM docker.io/library/debian:trixie-slim AS builder
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/todo-api
ENV PATH=/opt/todo-api/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Every dependency exactly as locked, each file checked against its hash, wheels only (no
# compiler in the image); then the service itself, without resolving anything again.
COPY requirements.lock ./
# Only where the package index is reached through a proxy with a CA of its own (as on our CI
# machines): a CA bundle mounted into the build, e.g. --build-arg PIP_CERT=/run/host-ca.crt.
ARG PIP_CERT
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && pip install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY openapi ./openapi
COPY handlers ./handlers
COPY storage ./storage
COPY todo_api ./todo_api
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && pip install --no-deps . \
 && pip uninstall -y pip \
 && find /opt/todo-api -name __pycache__ -prune -exec rm -rf {} +

FROM docker.io/library/debian:trixie-slim
ARG DEBIAN_FRONTEND=noninteractive
# apt-get clean: unlike Docker Hub's, a base made with mmdebstrap keeps the downloaded packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --uid 10001 --no-log-init --home-dir /data --create-home --shell /usr/sbin/nologin todo
COPY --from=builder /opt/todo-api /opt/todo-api
ENV PATH=/opt/todo-api/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
# The default SQLite database (for a try; deploy with DATABASE_URL) is written here; nothing
# else is written but to /tmp (the metrics' directory with several workers), so the root
# filesystem can be mounted read-only with a tmpfs on /tmp.
WORKDIR /data
VOLUME /data
USER todo
EXPOSE 8000
# No curl in the image: Python asks the liveness endpoint.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PORT', '8000'), timeout=2)"]
ENTRYPOINT ["todo-api"]
CMD ["serve", "--host", "0.0.0.0"]
