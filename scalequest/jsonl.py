"""Reading question files (one JSON object a line) strictly: a bad line is an error that names
the file and line, never a silent skip."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


class InputFileError(ValueError):
    """A line of an input file cannot be used; the message names file and line."""


def read_questions(path: str | Path, field: str, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, str]]:
    """(line index, question) for data lines [start, stop) of a JSONL file; blank lines do not count.

    Raises InputFileError for bytes that are not UTF-8, a line that is not a JSON object, or an
    object without a string `field`.
    """
    index = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if stop is not None and index >= stop:
                return
            if index >= start:
                yield index, _question(raw, field, f"{path}:{number}")
            index += 1


def _question(raw: bytes, field: str, where: str) -> str:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{where}: byte 0x{raw[err.start]:02x} at column {err.start + 1} is not valid UTF-8") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputFileError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise InputFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if field not in record:
        raise InputFileError(f"{where}: no '{field}' field (fields: {', '.join(sorted(record)) or 'none'})")
    if not isinstance(record[field], str):
        raise InputFileError(f"{where}: '{field}' is {type(record[field]).__name__}, expected a string")
    return record[field]
