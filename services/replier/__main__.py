"""``python -m services.replier``."""

from shared.service import main

from .config import ReplierSettings

if __name__ == "__main__":
    main("replier", ReplierSettings, "services.replier.bootstrap:build")
