# registry-monitor: a slim image that runs as a non-root user with its data and configuration on volumes.
#   docker build -t registry-monitor .
#   docker run -v "$PWD/data:/data" -v "$PWD/incoming:/incoming" registry-monitor
# Until the daemon lands (`monitor run`), the default command loads the snapshots mounted at /incoming
# into /data/monitor.db and reports what changed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MONITOR_DB=/data/monitor.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 monitor \
    && mkdir -p /data /config /incoming \
    && chown monitor:monitor /data
COPY config/monitor.yaml /config/monitor.yaml
COPY seeds /incoming

USER monitor
VOLUME ["/data"]
CMD ["monitor", "load", "/incoming"]
