"""The console logger of the project's Dagster runs: Dagster's colored console logger, less the
failure records of an interrupted run.

Dagster turns a Ctrl-C (or a SIGTERM) inside a step into a failed step and a failed run, and its
console logger prints both with their stack traces. The command then ends with its one short line
("Đã dừng / interrupted", exit 130: pipelines.cli); the run's event log keeps the records (the
webserver shows them). At log level DEBUG (the CLI's --debug) they are printed as before.
"""

from __future__ import annotations

import logging

from dagster import logger
from dagster._core.utils import coerce_valid_log_level
from dagster._loggers import colored_console_logger

from pipelines.errors import DAGSTER_INTERRUPTION


class _NoInterruptFailure(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return DAGSTER_INTERRUPTION not in record.getMessage()  # named in a failure's message


@logger(colored_console_logger.config_schema, description="Dagster's colored console logger, without an interruption's failures.")
def console_logger(init_context) -> logging.Logger:
    console = colored_console_logger.logger_fn(init_context)
    if coerce_valid_log_level(init_context.logger_config["log_level"]) > logging.DEBUG:
        quiet = _NoInterruptFailure()
        console.addFilter(quiet)
        for handler in console.handlers:
            handler.addFilter(quiet)
    return console
