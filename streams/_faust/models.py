"""Faust records: the fields a record class declares."""

from __future__ import annotations

import faust


def record_fields(record: type[faust.Record]) -> set[str]:
    """The names of the fields `record` declares (Faust keeps them in `_options`)."""
    return set(record._options.fields)
