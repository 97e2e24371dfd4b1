"""Errors every service shares."""


class ConfigError(Exception):
    """A setting is missing or invalid. Services print the one-line message and exit 2 at start."""
