"""Reading question files (one JSON object a line) strictly: a bad line is an error that names
the file and line, never a silent skip."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO, Iterator

# A question is a few KB; a line over this is not one record (a whole JSON array, say), and would be held
# whole, then many times over by the screens (a 200 MB line took 6.9 GB in scalequest-decontaminate).
MAX_LINE_BYTES = 16 * 2**20


class InputFileError(ValueError):
    """A line of an input file cannot be used; the message names file and line."""


def read_questions(path: str | Path, field: str, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, str]]:
    """(line index, question) for data lines [start, stop) of a JSONL file; blank lines do not count.

    Raises InputFileError for bytes that are not UTF-8, a line that is not a JSON object, or an
    object without a string `field`.
    """
    for index, _, record, where in _records(path, start, stop):
        yield index, _string_field(record, field, where)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The objects of a JSONL file the workflow wrote itself (split on "\\n" only: texts may hold U+2028)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_question_lines(path: str | Path, field: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, question) for every data line of a JSONL file (blank lines skipped);
    errors as read_questions'."""
    for _, number, record, where in _records(path):
        yield number, _string_field(record, field, where)


def read_questions_with_answers(path: str | Path, field: str, answer_field: str) -> Iterator[tuple[str, str | None]]:
    """(question, answer text) for every data line; the answer is None where the record has none
    (null or absent: the caller counts it), and a number's text where it is a number."""
    for _, _, record, where in _records(path):
        yield _string_field(record, field, where), _optional_text(record, answer_field, where)


def field_names(path: str | Path) -> list[str]:
    """Every field any data line of a JSONL file has, sorted (for a message naming a missing one)."""
    return sorted({name for _, _, record, _ in _records(path) for name in record})


def _records(path: str | Path, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, int, dict, str]]:
    """(data line index, 1-based line number, JSON object, "file:line") for data lines [start, stop)."""
    index = 0
    with open(path, "rb") as handle:
        for number, raw in _lines(handle, path):
            if not raw.strip():
                continue
            if stop is not None and index >= stop:
                return
            if index >= start:
                where = f"{path}:{number}"
                yield index, number, _record(raw, where), where
            index += 1


def _lines(handle: BinaryIO, path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) for every line; InputFileError for one longer than MAX_LINE_BYTES,
    raised before it is held whole."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise InputFileError(
                f"{path}:{number}: a line of {_line_length(handle, len(raw)):,} bytes, over the cap of "
                f"{MAX_LINE_BYTES:,} (jsonl.MAX_LINE_BYTES). A JSONL file holds one JSON object a line: is this "
                "one JSON array? Write one object a line, or shorten that line")
        yield number, raw


def _line_length(handle: BinaryIO, read: int) -> int:
    """The length without its newline of the line being read, `read` bytes of which are read: the rest
    is read in pieces of 1 MiB, never held whole."""
    while piece := handle.readline(2**20):
        if piece.endswith(b"\n"):
            return read + len(piece) - 1
        read += len(piece)
    return read


def _record(raw: bytes, where: str) -> dict:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{where}: byte 0x{raw[err.start]:02x} at column {err.start + 1} "
                             "is not valid UTF-8") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        # Some of json's messages end in "at" ("Invalid control character at"): the column follows.
        raise InputFileError(f"{where}: not valid JSON ({err.msg.removesuffix(' at')} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise InputFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def _string_field(record: dict, field: str, where: str) -> str:
    if field not in record:
        raise InputFileError(f"{where}: no '{field}' field (fields: {', '.join(sorted(record)) or 'none'})")
    if not isinstance(record[field], str):
        raise InputFileError(f"{where}: '{field}' is {type(record[field]).__name__}, expected a string")
    return record[field]


def _optional_text(record: dict, field: str, where: str) -> str | None:
    try:
        return answer_text(record.get(field))
    except TypeError as err:
        raise InputFileError(f"{where}: '{field}' {err}") from None


def answer_text(value: Any) -> str | None:
    """An answer field as text: a string as it is, a number's text, a list's items joined by ", "
    (OlympiadBench's final_answer is a list); None stays None. TypeError for anything else."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                                 for v in value):
        return ", ".join(str(v) for v in value)
    raise TypeError(f"is {type(value).__name__}, expected a string, a number or a list of them")
