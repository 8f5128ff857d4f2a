FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY providers ./providers
COPY policies ./policies
RUN pip install . && useradd --system --uid 10001 --no-create-home gateway
COPY config.yaml ./config.yaml

USER gateway
EXPOSE 8080
ENV AI_GATEWAY_CONFIG=/app/config.yaml
# Listen on every address of the container.  With ANTHROPIC_API_KEY set, serve refuses
# auth.mode none on it unless AI_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK=true (see README).
ENV AI_GATEWAY_HOST=0.0.0.0
# Liveness for Docker; orchestrators should also use /livez (liveness) and /readyz
# (readiness: config loaded, Redis answering when configured, not draining).
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/ai/stream/health', timeout=2).status == 200 else 1)"
# SIGTERM drains open streams for server.drain_seconds (30): give the container longer
# (docker stop -t 40, Kubernetes terminationGracePeriodSeconds: 40).
STOPSIGNAL SIGTERM
CMD ["ai-gateway", "serve"]
