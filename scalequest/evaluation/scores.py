"""The evaluation table: accuracy per (model, training dataset, benchmark), recounted from the per-item
records, with a 95% binomial confidence interval, the average over the benchmarks, and the paper's
Table 1 beside the rows it reports."""
from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic import write_text_atomic
from ..records import read_shard
from .records import EVAL_ANSWERS, EVAL_ITEMS

Z95 = 1.959964  # the normal quantile of a two-sided 95% interval

# The paper's Table 1 (arXiv 2410.18693): base models fine-tuned on the ScaleQuest 1M pairs, zero-shot,
# accuracy in percent; keyed by the base model's hub id and our benchmark names.
PAPER_TABLE_1 = {
    "mistralai/Mistral-7B-v0.1": {"gsm8k": 88.5, "math": 62.9, "college_math": 43.5, "olympiadbench": 26.8},
    "meta-llama/Meta-Llama-3-8B": {"gsm8k": 87.9, "math": 64.4, "college_math": 42.8, "olympiadbench": 25.3},
    "deepseek-ai/deepseek-math-7b-base": {"gsm8k": 89.5, "math": 66.6, "college_math": 47.7, "olympiadbench": 29.9},
    "Qwen/Qwen2-Math-7B": {"gsm8k": 89.7, "math": 73.4, "college_math": 50.0, "olympiadbench": 38.5},
}


def wilson_interval(successes: float, trials: int) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion at 95% (0, 0 for no trials)."""
    if trials == 0:
        return 0.0, 0.0
    p = successes / trials
    center = (p + Z95 ** 2 / (2 * trials)) / (1 + Z95 ** 2 / trials)
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95 ** 2 / (4 * trials ** 2)) / (1 + Z95 ** 2 / trials)
    return max(0.0, center - half), min(1.0, center + half)


def benchmark_score(records: Sequence[Mapping[str, Any]], samples: int) -> dict[str, Any]:
    """One cell: items, accuracy (mean share of correct responses per item: pass@1), its interval,
    the verdicts' counts, and with several samples pass@k and majority@k."""
    items = len(records)
    correct = sum(record["correct"] for record in records) / samples
    low, high = wilson_interval(correct, items)
    cell = {"items": items, "correct": round(correct, 6), "accuracy": round(correct / items, 6) if items else 0.0,
            "ci95": [round(low, 6), round(high, 6)],
            "verdicts": dict(sorted(Counter(v for record in records for v in record["verdicts"]).items()))}
    if samples > 1:
        cell[f"pass@{samples}"] = round(sum(record["correct"] > 0 for record in records) / max(items, 1), 6)
        cell[f"maj@{samples}"] = round(sum(record["majority_correct"] for record in records) / max(items, 1), 6)
    return cell


def collect_scores(*, answer_paths: Sequence[str | Path], item_paths: Mapping[str, str | Path],
                   rows: Sequence[Mapping[str, Any]], samples: int, absent: Mapping[str, str]) -> dict[str, Any]:
    """The scores of every evaluated (model, dataset) row (`rows`: label, dataset, base model path, and
    whether the dataset is this run's release), on every benchmark of `item_paths`; `absent`: optional
    benchmarks left out (name: missing path). Raises ValueError when a benchmark's records do not
    cover each of its items exactly once."""
    golds = {name: read_shard(path, EVAL_ITEMS).column("gold") for name, path in sorted(item_paths.items())}
    sizes = {name: len(gold) for name, gold in golds.items()}
    records: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for path in answer_paths:
        table = read_shard(path, EVAL_ANSWERS).select(["model", "dataset", "benchmark", "item", "correct",
                                                        "verdicts", "majority_correct"])
        for record in table.to_pylist():
            records[record["model"], record["dataset"], record["benchmark"]].append(record)
    scored = []
    for row in rows:
        cells = {}
        for name, size in sizes.items():
            found = records.get((row["label"], row["dataset"], name), [])
            if sorted(record["item"] for record in found) != list(range(size)):
                raise ValueError(f"{row['label']} ({row['dataset']}) on {name}: the records hold {len(found)} items, "
                                 f"not each of the benchmark's {size} once")
            cells[name] = benchmark_score(found, samples)
        average = sum(cell["accuracy"] for cell in cells.values()) / len(cells) if cells else 0.0
        paper = PAPER_TABLE_1.get(row["base_path"]) if row["release"] else None
        scored.append({**row, "scores": cells, "average": round(average, 6), "paper": paper})
    return {"measured": "on this run", "samples": samples,
            # no_gold (where there are any): items the eval_items job found no gold answer for, graded wrong
            "benchmarks": {name: {"items": len(gold), **({"no_gold": gold.null_count} if gold.null_count else {})}
                           for name, gold in golds.items()},
            "absent_benchmarks": dict(sorted(absent.items())), "rows": scored}


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def table_rows(scores: Mapping[str, Any]) -> list[list[str]]:
    """The table's header and rows as text cells: a row per (model, dataset), a column per benchmark and
    their average; each cell the accuracy in percent with its 95% interval and the number of items (and
    with k samples, pass@k and maj@k); the paper's Table 1 row beneath each row it reports."""
    names, k = list(scores["benchmarks"]), scores["samples"]
    heads = [f"{name} ({about['no_gold']} items without a gold answer, graded wrong)" if about.get("no_gold") else name
             for name, about in scores["benchmarks"].items()]
    rows = [["model", "fine-tuned on", *heads, "average"]]
    for row in scores["rows"]:
        cells = [f"{_percent(c['accuracy'])} ({_percent(c['ci95'][0])}–{_percent(c['ci95'][1])}, n={c['items']})"
                 + (f"; pass@{k} {_percent(c[f'pass@{k}'])}, maj@{k} {_percent(c[f'maj@{k}'])}" if k > 1 else "")
                 for c in (row["scores"][name] for name in names)]
        rows.append([row["label"], row["dataset"], *cells, _percent(row["average"])])
        if row["paper"]:
            known = list(row["paper"].values())
            rows.append(["↳ paper, Table 1", "ScaleQuest 1M",
                         *[f"{row['paper'][name]:.1f}" if name in row["paper"] else "–" for name in names],
                         f"{sum(known) / len(known):.1f} (its {len(known)})"])
    return rows


def render_table(scores: Mapping[str, Any]) -> str:
    """The scores as Markdown (table_rows), with how they were measured."""
    header, *rows = table_rows(scores)
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    samples = scores["samples"]
    how = "greedy, one response per item" if samples == 1 else f"{samples} samples per item (pass@1 is their mean)"
    lines += ["", f"Accuracy in percent, measured on this run: zero-shot chain of thought ({how}), answers graded "
              "against the gold answers by scalequest/grading.py. In brackets: the 95% binomial (Wilson) interval "
              "and the number of items. `none`: the model as it is, without fine-tuning."]
    lines += [f"Not scored: {name} (optional, no file at {path})."
              for name, path in scores["absent_benchmarks"].items()]
    return "\n".join(lines) + "\n"


def write_scores(scores: Mapping[str, Any], json_path: str | Path, table_path: str | Path) -> str:
    """Rule evaluate's outputs: the scores as JSON (sorted keys, no timestamps: a re-run writes the same bytes)
    and as a Markdown table; returns the table."""
    table = render_table(scores)
    write_text_atomic(json_path, json.dumps(scores, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    write_text_atomic(table_path, table)
    return table
