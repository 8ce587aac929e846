"""Errors a user can cause and fix; the CLI prints them as messages (exit code 2), never as tracebacks."""

from __future__ import annotations

from collections.abc import Mapping

INTERRUPTED = "Đã dừng / interrupted"  # a command stopped by Ctrl-C (exit code 130), wherever it was


class ConfigError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


def env_number(env: Mapping[str, str], name: str, default: str, kind=float):
    """The number in environment variable `name` (else `default`); a ConfigError naming it when it is not one."""
    text = env.get(name, default)
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"Biến môi trường {name}={text!r} không phải là số / environment variable {name}={text!r} is not a number"
            f" (mặc định / default {default})"
        ) from None
