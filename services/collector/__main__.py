"""``python -m services.collector``."""

from shared.service import main

from .config import CollectorSettings

if __name__ == "__main__":
    main("collector", CollectorSettings, "services.collector.bootstrap:build")
