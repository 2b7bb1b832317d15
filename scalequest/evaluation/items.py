"""Benchmark items with their gold answers, for the evaluation: one Parquet file per benchmark, read
from the same source the decontamination reads (release.decontamination.benchmarks)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..answers import gold_answer
from ..decontam import BenchmarkError, describe_source, load_benchmark_records
from ..jsonl import field_names
from ..records import read_shard, to_table, write_shard
from ..stats import ShardStats, stats_path, write_stats
from .records import EVAL_ITEMS

# Why an item has no gold answer: its answer field is absent, null or blank; or answer_format finds none in it.
NO_ANSWER, UNREADABLE = "no_answer", "unreadable_answer"
SHOWN = 5  # item numbers named in a message
SHOWN_CHARS = 80  # of an answer text quoted in a message


def load_items(name: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every item of a configured benchmark with its gold final answer (None where it has none), in file
    order. The entry needs `answer_field`; `answer_format` says how to read it. Raises BenchmarkError when
    no item has a gold answer (every model would score 0)."""
    return _items_and_gaps(name, entry)[0]


def _items_and_gaps(name: str, entry: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    """load_items' items, and the numbers of those without a gold answer by why (NO_ANSWER, UNREADABLE)."""
    key = f"release.decontamination.benchmarks.{name}"
    field = entry.get("answer_field")
    if not field:
        raise BenchmarkError(f"{key}.answer_field: not set; the evaluation needs each benchmark's gold answers")
    rows, gaps, unread = [], {NO_ANSWER: [], UNREADABLE: []}, None
    for index, (question, text) in enumerate(load_benchmark_records(name, entry, field)):
        gold = None if text is None else gold_answer(text, entry["answer_format"])
        if gold is None and (text is None or not text.strip()):
            gaps[NO_ANSWER].append(index)
        elif gold is None:
            gaps[UNREADABLE].append(index)
            unread = unread or text
        rows.append({"id": f"{name}-{index}", "benchmark": name, "item": index, "question": question, "gold": gold})
    if rows and len(gaps[NO_ANSWER]) + len(gaps[UNREADABLE]) == len(rows):
        setting, why = _no_gold(entry, unread)
        raise BenchmarkError(f"{key}.{setting}: benchmark '{name}' has no gold answer, so every model would score 0 "
                             f"on it: {why}")
    return rows, {reason: items for reason, items in gaps.items() if items}


def _no_gold(entry: Mapping[str, Any], unread: str | None) -> tuple[str, str]:
    """(the setting to fix, why no item has a gold answer and what to do) for a benchmark without any;
    `unread`: the first answer text answer_format finds no answer in (None: there is no answer text)."""
    field, answer_format = entry["answer_field"], entry["answer_format"]
    where = entry["path"] if entry.get("path") else describe_source(entry)
    fields = field_names(entry["path"]) if entry.get("path") else []
    if unread is not None:  # the answers are there, written in another format than the one set
        shown = unread if len(unread) <= SHOWN_CHARS else unread[:SHOWN_CHARS] + "…"
        return "answer_format", (
            f"answer_format {answer_format} finds no answer in the '{field}' of any item of {where} (e.g. {shown!r}). "
            "Set answer_format to how the answers are written: gsm8k (the number after the last ####), boxed "
            "(the last \\boxed{}) or plain (the field is the answer)")
    if entry.get("path") and field not in fields:
        return "answer_field", (f"no item of {where} has a field '{field}' (its fields: {', '.join(fields)}). "
                                "Set answer_field to the field that holds the gold answers")
    known = f" (its fields: {', '.join(fields)})" if fields else ""
    return "answer_field", (f"'{field}' is absent, null or blank in every item of {where}{known}. Set answer_field "
                            "to the field that holds the gold answers, or give a file that has them")


def _numbered(numbers: list[int]) -> str:
    """'items 0, 3, 9 and 2 more' (0-based, in file order)."""
    shown = ", ".join(str(number) for number in numbers[:SHOWN])
    more = f" and {len(numbers) - SHOWN} more" if len(numbers) > SHOWN else ""
    return f"item{'s' if len(numbers) > 1 else ''} {shown}{more}"


def write_items(name: str, entry: Mapping[str, Any], out: str | Path) -> ShardStats:
    """Rule eval_items: the benchmark's items as a Parquet file and a sidecar. Every item is kept, so
    that a score is always over the whole benchmark; items without a readable gold answer are counted
    (`no_gold`, split into NO_ANSWER and UNREADABLE), named in the log, and can only be graded wrong."""
    rows, gaps = _items_and_gaps(name, entry)
    stats = ShardStats("eval_items", name, "00000", None, {})
    stats.questions.keep(len(rows))
    stats.counters["no_gold"] = sum(len(items) for items in gaps.values())
    stats.counters.update({reason: len(items) for reason, items in gaps.items()})
    stats.finish()
    write_shard(to_table(rows, EVAL_ITEMS), EVAL_ITEMS, out)
    write_stats(stats_path(out), stats)
    missing = stats.counters["no_gold"]
    print(f"{name}: {len(rows)} items, {missing} without a gold answer"
          + (", counted wrong for every model:" if missing else ""), flush=True)
    field = entry["answer_field"]
    for reason, why in ((NO_ANSWER, f"with no '{field}' (absent, null or blank)"),
                        (UNREADABLE, f"whose '{field}' holds no answer answer_format {entry['answer_format']} reads")):
        if gaps.get(reason):
            print(f"  {len(gaps[reason])} {why}: {_numbered(gaps[reason])}", flush=True)
    return stats


def read_items(path: str | Path) -> list[dict[str, Any]]:
    return read_shard(path, EVAL_ITEMS).to_pylist()
