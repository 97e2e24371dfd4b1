"""``python -m services.gateway``: the read models, the HTTP API and the dashboard."""

from shared.service import main

from .config import GatewaySettings

if __name__ == "__main__":
    main("gateway", GatewaySettings, "services.gateway.bootstrap:build")
