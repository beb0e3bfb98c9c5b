# syntax=docker/dockerfile:1
# Build stage: a wheel of the service alone; its dependencies come from requirements.lock.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY service ./service
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: no compiler, no pip cache, a non-root user. Run it with a read-only root
# filesystem: state_dir (a volume) is the only path the service writes.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ECR_CATALOG_SERVER__HOST=0.0.0.0 \
    ECR_CATALOG_SERVER__PORT=8080 \
    ECR_CATALOG_STATE_DIR=/var/lib/ecr-catalog
# The runtime dependencies at the exact versions of requirements.lock, each file checked against
# its hash (`make lock` writes the lock from pyproject.toml for this Python), then the service's
# own wheel without resolving anything again.
COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-index --no-deps /wheels/*.whl \
    && rm -rf /wheels /tmp/requirements.lock \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ecr-catalog \
    && mkdir -p /var/lib/ecr-catalog \
    && chown ecr-catalog /var/lib/ecr-catalog
USER 10001
VOLUME ["/var/lib/ecr-catalog"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
CMD ["ecr-catalog", "serve"]
