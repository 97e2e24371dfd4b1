# One image for every xbot service: `docker run xbot:local <service>` runs `xbot service <service>`.
#   docker build -t xbot:local .
# No secret is ever copied or baked in: OPENAI_API_KEY, ADMIN_TOKEN and the X session come from the
# environment at run time (compose: .env; Kubernetes: the xbot-secrets Secret). See RUNBOOK.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XBOT_HOME=/var/lib/xbot \
    LOG_FORMAT=json

# Debian's Chromium for the poster and collector (Playwright drives it; no Playwright browser download),
# tini as PID 1 so Chromium's child processes are reaped and SIGTERM reaches the service.
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-liberation fonts-noto-color-emoji tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 xbot \
 && useradd --system --uid 10001 --gid xbot --home-dir /home/xbot --create-home --shell /usr/sbin/nologin xbot \
 && mkdir -p /var/lib/xbot \
 && chown xbot:xbot /var/lib/xbot

# Dependency layer: only pyproject.toml, so editing the code does not reinstall the dependencies.
COPY pyproject.toml /src/pyproject.toml
RUN python -c "import tomllib; deps = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code (shared/ and services/, with the SQL migrations and the gateway's static files as package data),
# and xbot/, the command line the entrypoint runs (`xbot service <name>`).
COPY shared /src/shared
COPY services /src/services
COPY xbot /src/xbot
RUN pip install --no-deps /src && rm -rf /src

USER xbot:xbot
WORKDIR /var/lib/xbot
# 8080: the gateway (GATEWAY_PORT); 8081: /healthz and /readyz of the other services (SERVICE_HEALTH_PORT).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/bin/tini", "--", "xbot", "service"]
CMD ["gateway"]
