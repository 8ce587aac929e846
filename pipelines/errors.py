"""Errors a user can cause and fix; the CLI prints them as messages (exit code 2), never as tracebacks."""


class ConfigError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""
