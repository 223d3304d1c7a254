"""Logging: human-readable lines by default, JSON lines with LOG_FORMAT=json.

JSON records carry `timestamp`, `level`, `logger`, `message`, and the record coordinates
(`topic`, `partition`, `offset`, `agent`) when the log call passed them in `extra=`.

The same warning or error, word for word, is written once per `REPEAT_WINDOW_S`: when
topics vanish under a worker (brokers replaced), aiokafka reports each missing topic on
every metadata refresh, for as long as the worker runs.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
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


REPEAT_WINDOW_S = 60.0


class RepeatFilter(logging.Filter):
    """Let a WARNING-or-worse message through once per window; say how often it recurred.

    Messages are told apart by logger, level and text, so dead letters of different
    offsets are all written. At most `remembered` distinct messages are tracked.
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_S, remembered: int = 1000) -> None:
        super().__init__()
        self.window_s = window_s
        self.remembered = remembered
        # message key -> (when it was last written, repeats held back since)
        self._seen: OrderedDict[tuple[str, int, str], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        key = (record.name, record.levelno, text)
        now = time.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{text} (and {last[1]} more times in the last {self.window_s:g}s)"
            record.args = ()
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self.remembered:
            self._seen.popitem(last=False)
        return True


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
        "filters": {"repeats": {"()": RepeatFilter}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "platform",
                                 "filters": ["repeats"], "stream": "ext://sys.__stderr__"}},
        "root": {"level": level, "handlers": ["console"]},
    }
