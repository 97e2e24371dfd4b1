"""``python -m services.planner``."""

from shared.service import main

from .config import PlannerSettings

if __name__ == "__main__":
    main("planner", PlannerSettings, "services.planner.bootstrap:build")
