# weavegraph: the CLI and web server. Configuration comes from the environment:
# WEAVEGRAPH_POSTGRES_URL / DATABASE_URL, WEAVEGRAPH_SQLITE_URL / SQLITE_DB_NAME,
# WEAVEGRAPH_API_TOKEN, WEAVEGRAPH_LOG.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[postgres,web,redis,otel]" \
    && useradd --create-home --uid 10001 weavegraph \
    && mkdir -p /data && chown weavegraph /data

USER weavegraph
# SQLite (when used) lives on the /data volume.
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

# uvicorn handles SIGTERM: running sessions stop at a step boundary, checkpointed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["weavegraph"]
CMD ["serve", "weavegraph.demo:demo_app", "--host", "0.0.0.0", "--port", "8000"]
