# syntax=docker/dockerfile:1
# Build stage: a wheel of the service and of its runtime dependencies.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: no compiler, no pip cache, a non-root user. Run it with a read-only root
# filesystem: state_dir (a volume) is the only path the service writes.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ECR_CATALOG_SERVER__HOST=0.0.0.0 \
    ECR_CATALOG_SERVER__PORT=8080 \
    ECR_CATALOG_STATE_DIR=/var/lib/ecr-catalog
COPY --from=build /wheels /wheels
# Every wheel was built from the lockstep dependency set of the build stage: installing the
# files themselves pins them, and nothing is fetched at this stage.
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ecr-catalog \
    && mkdir -p /var/lib/ecr-catalog \
    && chown ecr-catalog /var/lib/ecr-catalog
USER 10001
VOLUME ["/var/lib/ecr-catalog"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
CMD ["ecr-catalog", "serve"]
