"""The question/response pairs a base model is fine-tuned on: this run's release (or another of its
stages), a local JSONL file or a Hugging Face Hub dataset, written as one JSONL file of {question,
response} per dataset."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..atomic import atomic_path, write_json_atomic
from ..jsonl import InputFileError, read_questions_with_answers
from ..sources import SourceError, load_source_with_answers
from ..stats import Funnel


class DatasetError(ValueError):
    """A configured SFT dataset cannot be read; the message names the config key and the file or hub id."""


# A stage of this run as an SFT dataset (the ablation of the paper's Figure 5), before dedup and
# decontamination: `best`, the reward model's pick of each question's responses; `respond`, the first
# sampled response, as if there were no reward filtering.
STAGE_RESPONSE = {"best": "response", "respond": "responses"}


def _parquet_pairs(paths: Iterable[str | Path], response_column: str) -> Iterable[tuple[str, str | None]]:
    import pyarrow.parquet as pq

    for path in paths:
        table = pq.read_table(path, columns=["question", response_column])
        responses = table.column(response_column).to_pylist()
        if response_column == "responses":
            responses = [sampled[0] if sampled else None for sampled in responses]
        yield from zip(table.column("question").to_pylist(), responses)


def load_pairs(name: str, entry: Mapping[str, Any], inputs: list[str]) -> list[tuple[str, str | None]]:
    """(question, response) of every record of a configured dataset, in order; `inputs`: the release's
    data folder, or the stage's shards (a stage of this run)."""
    key = f"evaluation.datasets.{name}"
    try:
        if entry.get("release"):
            return list(_parquet_pairs(sorted(Path(inputs[0]).glob("*.parquet")), "response"))
        if entry.get("stage"):
            return list(_parquet_pairs(inputs, STAGE_RESPONSE[entry["stage"]]))
        if entry.get("path"):
            return list(read_questions_with_answers(entry["path"], entry["question_field"], entry["response_field"]))
        source = {k: entry[k] for k in ("hub", "subset", "split") if k in entry}
        return load_source_with_answers({**source, "name": name, "field": entry["question_field"],
                                         "answer_field": entry["response_field"]})
    except FileNotFoundError as err:
        raise DatasetError(f"{key}.path: {err.filename}: no such file") from None
    except (InputFileError, SourceError, OSError) as err:
        raise DatasetError(f"{key}: {err}") from None


def write_pairs(name: str, entry: Mapping[str, Any], inputs: list[str], out: str | Path,
                stats_out: str | Path) -> Funnel:
    """Rule sft_data: the dataset's pairs as JSONL (question, response) and a sidecar counting the
    pairs dropped because the question or the response is empty."""
    funnel = Funnel("pair")
    kept = []
    for question, response in load_pairs(name, entry, inputs):
        if not question.strip() or not (response or "").strip():
            funnel.drop("empty")
        else:
            funnel.keep()
            kept.append({"question": question, "response": response})
    funnel.check(f"dataset {name}")
    with atomic_path(out) as tmp:
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), encoding="utf-8")
    write_json_atomic(stats_out, {"stage": "sft_data", "dataset": name, "pairs": funnel.to_json()})
    return funnel
