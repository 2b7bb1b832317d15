"""One Parquet record schema per stage, shared by the writer and the reader.

Every shard carries the question's provenance (id, generator, shard, model, seed), and its
stage name in the file's metadata, so a shard describes itself.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .atomic import atomic_path
from .stats import remake_advice

SCHEMA_VERSION = "1"

QUESTION_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("generator", pa.string(), nullable=False),
    pa.field("shard", pa.int32(), nullable=False),
    pa.field("question", pa.string(), nullable=False),
    pa.field("question_model", pa.string(), nullable=False),
    pa.field("question_seed", pa.int64(), nullable=False),
    pa.field("difficulty", pa.float64()),  # the scorer's predicted fail rate; null until scored (or scoring is off)
]
RESPONSE_FIELDS = [
    pa.field("responses", pa.list_(pa.string()), nullable=False),
    pa.field("response_model", pa.string(), nullable=False),
    pa.field("response_seed", pa.int64(), nullable=False),
]


@dataclass(frozen=True)
class StageSchema:
    """A stage's record layout."""

    stage: str
    schema: pa.Schema

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def metadata(self) -> dict[bytes, bytes]:
        return {b"scalequest.stage": self.stage.encode(), b"scalequest.schema_version": SCHEMA_VERSION.encode()}


QUESTIONS = StageSchema("generate", pa.schema(QUESTION_FIELDS + [pa.field("gen_tokens", pa.int32(), nullable=False)]))
SOLVABLE = StageSchema(
    "filter",
    pa.schema(QUESTION_FIELDS + [pa.field("judge_reply", pa.string()), pa.field("judge_model", pa.string())]),
)
SCORED_QUESTION_FIELDS = QUESTION_FIELDS + [pa.field("difficulty_model", pa.string(), nullable=False)]
SCORED = StageSchema("difficulty", pa.schema(SCORED_QUESTION_FIELDS))
SAMPLED = StageSchema("sample", pa.schema(SCORED_QUESTION_FIELDS))
RESPONSES = StageSchema("respond", pa.schema(QUESTION_FIELDS + RESPONSE_FIELDS))
REWARDED = StageSchema(
    "reward",
    pa.schema(
        QUESTION_FIELDS
        + RESPONSE_FIELDS
        + [pa.field("scores", pa.list_(pa.float64()), nullable=False),
           pa.field("reward_model", pa.string(), nullable=False)]
    ),
)
BEST = StageSchema(
    "best",
    pa.schema(
        QUESTION_FIELDS
        + [
            pa.field("response", pa.string(), nullable=False),
            pa.field("score", pa.float64(), nullable=False),
            pa.field("margin", pa.float64()),  # null when the question had a single scored response
            pa.field("candidates", pa.int32(), nullable=False),
            pa.field("response_model", pa.string(), nullable=False),
            pa.field("reward_model", pa.string(), nullable=False),
        ]
    ),
)
RELEASE = StageSchema("release", BEST.schema)
# Difficulty labels: the solver's fail rate on a seed question with a gold answer.
LABELS = StageSchema(
    "difficulty_labels",
    pa.schema([
        pa.field("id", pa.string(), nullable=False),  # seeds-{line}
        pa.field("source", pa.string(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("gold", pa.string(), nullable=False),
        pa.field("correct", pa.int32(), nullable=False),
        pa.field("samples", pa.int32(), nullable=False),
        pa.field("fail_rate", pa.float64(), nullable=False),
        pa.field("solver_model", pa.string(), nullable=False),
    ]),
)
# QPO preference pairs: the optimizer's rewrite is preferred over the QFT model's raw question.
PAIRS = StageSchema(
    "qpo_rewrite",
    pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("generator", pa.string(), nullable=False),
        pa.field("rejected", pa.string(), nullable=False),
        pa.field("chosen", pa.string(), nullable=False),
        pa.field("optimizer_model", pa.string(), nullable=False),
        pa.field("optimizer_reply", pa.string(), nullable=False),
    ]),
)


class ShardFormatError(ValueError):
    """A shard file does not hold what its stage's schema says."""


def to_table(rows: Iterable[Mapping[str, Any]], layout: StageSchema) -> pa.Table:
    """Rows (dicts) → a table with exactly the stage's columns, in order."""
    rows = list(rows)
    expected = set(layout.columns)
    for number, row in enumerate(rows):
        if set(row) != expected:
            missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
            raise ShardFormatError(f"row {number} does not fit the '{layout.stage}' schema: "
                                   f"missing {missing}, unexpected {extra}")
    try:
        table = pa.Table.from_pylist(rows, schema=layout.schema) if rows else layout.schema.empty_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ShardFormatError(f"rows do not fit the '{layout.stage}' schema: {err}") from err
    for field in layout.schema:
        if not field.nullable and table.column(field.name).null_count:
            raise ShardFormatError(f"'{layout.stage}' column '{field.name}' must not hold nulls")
    return table.replace_schema_metadata(layout.metadata())


def write_shard(table: pa.Table, layout: StageSchema, path: str | Path) -> None:
    """Write a stage shard atomically after checking it has the stage's exact schema."""
    if not table.schema.equals(layout.schema, check_metadata=False):
        raise ShardFormatError(
            f"refusing to write {path}: columns {table.schema.names} do not match the "
            f"'{layout.stage}' schema {layout.columns}"
        )
    table = table.replace_schema_metadata(layout.metadata())
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


OWNER_COLUMNS = ("id", "generator", "shard")
_SHARD_FILE = re.compile(r"\d+")


def check_owner(table: pa.Table, path: str | Path) -> None:
    """Raise ShardFormatError unless every row of a shard file `<generator>/<shard>.parquet` belongs
    there (its generator, shard and id prefix) and no id repeats: a shard copied over another must
    not pass for it."""
    path = Path(path)
    generator, shard = path.parent.name, path.name.removesuffix(".parquet")
    if not _SHARD_FILE.fullmatch(shard) or not set(OWNER_COLUMNS) <= set(table.column_names):
        return
    prefix = f"{generator}-{shard}-"
    ids = table.column("id")
    strangers = pc.invert(pc.and_(pc.and_(pc.equal(table.column("generator"), generator),
                                          pc.equal(table.column("shard"), int(shard))),
                                  pc.starts_with(ids, prefix)))
    if pc.any(strangers).as_py():
        row = table.filter(strangers).slice(0, 1).to_pylist()[0]
        raise ShardFormatError(f"{path}: holds rows of generator {row['generator']}, shard {row['shard']} (e.g. id "
                               f"{row['id']}), not of {generator}/{shard}: a shard copied or moved from elsewhere. "
                               f"{remake_advice(path)}")
    if pc.count_distinct(ids).as_py() != len(ids):
        raise ShardFormatError(f"{path}: some ids appear in more than one row. {remake_advice(path)}")


@contextmanager
def _reading(path: str | Path, what: str = "not a readable Parquet shard") -> Iterator[None]:
    """Reading a shard file: a damaged one (cut short, overwritten) is a ShardFormatError that names
    it and says how to have it made again."""
    try:
        yield
    except (OSError, pa.ArrowInvalid, KeyError) as err:
        reason = " ".join(str(err).split())  # pyarrow's messages end in newlines, some span lines
        raise ShardFormatError(f"{path}: {what} ({type(err).__name__}: {reason}). {remake_advice(path)}") from err


def read_shard(path: str | Path, layout: StageSchema) -> pa.Table:
    """Read a stage shard and check that it is one (stage name and columns) and that its rows are
    its own (check_owner)."""
    with _reading(path):
        table = pq.read_table(path)
    check_layout(path, table.schema, layout)
    check_owner(table, path)
    return table


def check_shard_layout(path: str | Path, layout: StageSchema) -> None:
    """read_shard's stage and column checks, from the file's footer alone."""
    with _reading(path):
        schema = pq.read_schema(path)
    check_layout(path, schema, layout)


def check_layout(path: str | Path, schema: pa.Schema, layout: StageSchema) -> None:
    """Raise ShardFormatError unless a shard's `schema` is the stage's: its stage name and columns."""
    stage = (schema.metadata or {}).get(b"scalequest.stage", b"").decode()
    if stage != layout.stage:
        raise ShardFormatError(f"{path}: holds stage '{stage or 'unknown'}', expected '{layout.stage}'. "
                               f"{remake_advice(path)}")
    if not schema.equals(layout.schema, check_metadata=False):
        raise ShardFormatError(f"{path}: columns {schema.names} differ from the '{layout.stage}' "
                               f"schema {layout.columns}. {remake_advice(path)}")


def read_columns(path: str | Path, stage: str, columns: Sequence[str] | None) -> pa.Table:
    """Some columns of a shard (None: all), after checking the file's stage and that its rows are its
    own (cheap: Parquet reads only those and the owner columns)."""
    with _reading(path, "cannot read columns " + ("(all)" if columns is None else str(list(columns)))):
        names = pq.read_schema(path).names
        columns = names if columns is None else columns
        owners = [name for name in OWNER_COLUMNS if name in names and name not in columns]
        table = pq.read_table(path, columns=[*columns, *owners])
    found = (table.schema.metadata or {}).get(b"scalequest.stage", b"").decode()
    if found != stage:
        raise ShardFormatError(f"{path}: holds stage '{found or 'unknown'}', expected '{stage}'. "
                               f"{remake_advice(path)}")
    check_owner(table, path)
    return table.select(list(columns))


def read_any_shard(path: str | Path, layouts: Iterable[StageSchema]) -> tuple[pa.Table, StageSchema]:
    """Read a shard that may be of several stages (e.g. respond reads filter or sample shards),
    choosing the layout by the stage its metadata names."""
    by_stage = {layout.stage: layout for layout in layouts}
    with _reading(path):
        stage = (pq.read_schema(path).metadata or {}).get(b"scalequest.stage", b"").decode()
    if stage not in by_stage:
        raise ShardFormatError(f"{path}: holds stage '{stage or 'unknown'}', expected one of {sorted(by_stage)}. "
                               f"{remake_advice(path)}")
    return read_shard(path, by_stage[stage]), by_stage[stage]


def question_columns(table: pa.Table) -> pa.Table:
    """The provenance + question columns every stage carries forward."""
    return table.select([f.name for f in QUESTION_FIELDS])
