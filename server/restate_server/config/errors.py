"""The one error the configuration loader raises, with upstream's code (RT0002)."""

from __future__ import annotations


class ConfigError(Exception):
    """Configuration cannot be loaded; the message names the key, its source and the reason."""

    code = "RT0002"  # upstream's error code for configuration loading errors

    def __init__(self, message: str) -> None:
        super().__init__(f"[{self.code}] configuration loading error: {message}")
