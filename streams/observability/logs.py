"""Logging: human-readable lines by default, JSON lines with LOG_FORMAT=json.

JSON records carry `timestamp`, `level`, `logger`, `message`, and the record coordinates
(`topic`, `partition`, `offset`, `agent`) when the log call passed them in `extra=`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("topic", "partition", "offset", "agent", "worker")


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage().strip(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict for the worker (Faust's `logging_config`)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json"
        else {"format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"platform": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "platform",
                                 "stream": "ext://sys.__stderr__"}},
        "root": {"level": level, "handlers": ["console"]},
    }
