# syntax=docker/dockerfile:1
# Build stage: a wheel of the service and of its runtime dependencies.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: no compiler, no pip cache, a non-root user, state_dir the only writable path.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ECR_CATALOG_SERVER__HOST=0.0.0.0 \
    ECR_CATALOG_SERVER__PORT=8080
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels ecr-catalog \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ecr-catalog \
    && mkdir -p /var/lib/ecr-catalog \
    && chown ecr-catalog /var/lib/ecr-catalog
USER 10001
VOLUME ["/var/lib/ecr-catalog"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["ecr-catalog"]
CMD ["serve"]
