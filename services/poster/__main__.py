"""``python -m services.poster``."""

from shared.service import main

from .config import PosterSettings

if __name__ == "__main__":
    main("poster", PosterSettings, "services.poster.bootstrap:build")
