# One image for all five services; MENTORBUS_SERVICE picks which app uvicorn serves.

# The gateway's console (services/gateway/console): its build needs the Node tools and the
# project itself (the TypeScript types come from the public OpenAPI document).
FROM python:3.11-slim AS console
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY tools/node/package.json tools/node/package-lock.json tools/node/
RUN npm ci --prefix tools/node --no-audit --no-fund
COPY pyproject.toml ./
COPY shared/ ./shared/
COPY services/ ./services/
RUN pip install --no-cache-dir . && PYTHON=python services/gateway/console/build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml ./
COPY shared/ ./shared/
COPY services/ ./services/
COPY --from=console /app/services/gateway/console/dist ./services/gateway/console/dist
RUN pip install --no-cache-dir .

# A numeric UID lets Kubernetes verify runAsNonRoot without a runAsUser override.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin mentorbus
USER 10001

ENV MENTORBUS_SERVICE=gateway
EXPOSE 8000

# sh -c expands MENTORBUS_SERVICE; exec hands PID 1 to uvicorn so SIGTERM shuts it down cleanly.
# On SIGTERM uvicorn stops accepting, waits up to MENTORBUS_SHUTDOWN_GRACE_SECONDS for
# requests in flight, then the lifespan shutdown commits the consumer's offsets and lets the
# relay finish its batch (as long again at most): Kubernetes gives 45 s.
CMD ["sh", "-c", "exec uvicorn services.${MENTORBUS_SERVICE}.app:app --host 0.0.0.0 --port 8000 --timeout-graceful-shutdown ${MENTORBUS_SHUTDOWN_GRACE_SECONDS:-20}"]
