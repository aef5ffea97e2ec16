# registry-monitor: `monitor run` as a non-root user, the configuration on /config and the data on /data.
#   docker build -t registry-monitor .
#   docker run -d --name monitor -v "$PWD/config:/config" -v monitor-data:/data registry-monitor
#   docker exec monitor monitor status
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MONITOR_CONFIG=/config/monitor.yaml MONITOR_DB=/data/monitor.db MONITOR_SNAPSHOTS=/data/snapshots

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 monitor \
    && mkdir -p /data /config \
    && chown monitor:monitor /data
# The embedded default configuration and the seed pages it watches; mount /config to replace them.
COPY config/monitor.yaml /config/monitor.yaml
COPY seeds /app/seeds

USER monitor
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=20s --start-period=30s --retries=3 CMD ["monitor", "status", "--health"]
STOPSIGNAL SIGTERM
CMD ["monitor", "run"]
