# syntax=docker/dockerfile:1
# The platform's one image: the `valueverse` CLI (roles, ingest, api, jobs), Dagster and the
# dashboards. docker-compose.yml builds it once for every such service; each gives its command.
# Base pinned by tag: no registry is reachable where this file was written, so the digest is
# not recorded. Pin it where one is (`docker buildx imagetools inspect
# python:3.11.14-slim-bookworm`) by appending @sha256:<digest> to both FROM lines.

# --- assets: the npm packages Data Docs load (ingestion/quality/assets/package-lock.json)
FROM node:20.19.5-bookworm-slim AS assets
WORKDIR /assets
COPY ingestion/quality/assets/package.json ingestion/quality/assets/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# --- build: the locked production dependencies (no dev group, no demo extra) into /app/.venv
FROM python:3.11.14-slim-bookworm AS build
# the uv the Makefile pins (UV_VERSION), so the image resolves exactly what uv.lock says
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# dependencies first: this layer is reused while only the code changes
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY ingestion ingestion
COPY dagster_project dagster_project
COPY dashboards dashboards
COPY dbt dbt
# only the few MB of them the report loads, where offline_docs looks by default
COPY --from=assets /assets/node_modules /tmp/node_modules
RUN uv sync --frozen --no-dev \
 && .venv/bin/python -m compileall -q ingestion dagster_project dashboards \
 && .venv/bin/python -m ingestion.quality.offline_docs /tmp/node_modules \
    ingestion/quality/assets/node_modules

# --- runtime: the venv and the code, owned by root and read-only to the user that runs them
FROM python:3.11.14-slim-bookworm AS runtime
# a fixed uid, so volumes and Kubernetes' runAsUser can name it; its home is where Streamlit
# and the libraries keep per-user files. /var/lib/valueverse is the one writable place (dbt's
# target folders by default; compose's Dagster uses its /dagster_home volume, made here so a
# new named volume starts owned by the user).
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin valueverse \
 && install -d -o valueverse -g valueverse /var/lib/valueverse /dagster_home
WORKDIR /app
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VALUEVERSE_DBT_TARGET_DIR=/var/lib/valueverse/dbt-target \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false
# numeric: Kubernetes' runAsNonRoot can only verify a uid, and no passwd lookup is needed
USER 10001:10001
# No image-wide health check: the services sharing this image answer on different ports (the
# API's /readyz, Dagster's UI, Streamlit) or not at all (ingest, one-shot jobs), so compose
# (and Kubernetes probes) check each service; a single check here would be wrong for most.
HEALTHCHECK NONE
ENTRYPOINT ["valueverse"]
CMD ["--help"]
