"""``python -m services.learner``."""

from shared.service import main

from .config import LearnerSettings

if __name__ == "__main__":
    main("learner", LearnerSettings, "services.learner.bootstrap:build")
