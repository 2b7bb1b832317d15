"""The run report's figures and tables, made from the release (funnel.json and the released
pairs); `snakemake --report` embeds them with the run's provenance in one HTML file."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from .atomic import atomic_path, write_text_atomic
from .evaluation.scores import table_rows
from .gpu_jobs import job_gpus
from .registry import job_of

FIGURE_DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on cluster nodes
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    _pyplot().close(figure)


def funnel_figure(funnel: Mapping[str, Any], path: str | Path) -> None:
    """Questions kept and dropped at every stage, each drop reason its own segment."""
    plt = _pyplot()
    stages = [entry for entry in funnel["stages"] if "questions" in entry]
    reasons = sorted({reason for entry in stages for reason, n in entry["questions"]["dropped"].items() if n})
    figure, axis = plt.subplots(figsize=(9, 0.45 * len(stages) + 1.8))
    labels = [entry["stage"] for entry in stages][::-1]
    kept = [entry["questions"]["kept"] for entry in stages][::-1]
    axis.barh(labels, kept, color="#3b7dd8", label="kept")
    left = np.asarray(kept, dtype=float)
    colors = [plt.get_cmap("tab20")(index % 20) for index in range(2, 2 + len(reasons))]  # not kept's blue
    for color, reason in zip(colors, reasons):
        counts = np.asarray([entry["questions"]["dropped"].get(reason, 0) for entry in stages][::-1], dtype=float)
        axis.barh(labels, counts, left=left, color=color, label=f"dropped: {reason}")
        left += counts
    axis.set_xlabel("questions")
    axis.set_title(f"Funnel: {funnel['released_pairs']:,} released pairs")
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    _save(figure, path)


def _histogram(axis, values: np.ndarray, title: str, xlabel: str, bins: int = 40) -> None:
    if len(values):
        axis.hist(values, bins=bins, color="#3b7dd8")
    else:
        axis.text(0.5, 0.5, "no values", ha="center", va="center", transform=axis.transAxes)
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("pairs")


def distribution_figure(columns: Mapping[str, np.ndarray], panels: Sequence[tuple[str, str, str]],
                        path: str | Path) -> None:
    """One histogram per (column, title, x label) panel, side by side."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for axis, (column, title, xlabel) in zip(np.atleast_1d(axes), panels):
        _histogram(axis, columns[column], title, xlabel)
    _save(figure, path)


def difficulty_figure(difficulty: Mapping[str, Any] | None, path: str | Path) -> None:
    """Predicted fail rates per bin: every scored question, the sampled ones, the released ones."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.8))
    if not difficulty:
        axis.text(0.5, 0.5, "difficulty scoring was off", ha="center", va="center", transform=axis.transAxes)
        axis.set_axis_off()
        _save(figure, path)
        return
    bins = difficulty["bins"]
    labels = [f"{low:g}-{high:g}" for low, high in zip(bins, bins[1:])]
    positions = np.arange(len(labels))
    for offset, (series, color) in enumerate((("scored", "#9bbbe8"), ("sampled", "#3b7dd8"), ("released", "#173f7a"))):
        axis.bar(positions + (offset - 1) * 0.27, difficulty[series], width=0.27, color=color, label=series)
    axis.set_xticks(positions, labels)
    axis.set_xlabel("predicted fail rate of the solver")
    axis.set_ylabel("questions")
    axis.set_title(f"Difficulty before and after sampling (keep rule: {difficulty['rule']})")
    axis.legend()
    _save(figure, path)


def contamination_figure(decontamination: Mapping[str, Any], path: str | Path) -> None:
    """Per benchmark: questions matching one of its test items, those dropped for it by screen, and
    the released number variants."""
    plt = _pyplot()
    benchmarks = decontamination["benchmarks"]
    figure, axis = plt.subplots(figsize=(8, 3.6))
    names = list(benchmarks)
    positions = np.arange(len(names))
    axis.bar(positions - 0.27, [benchmarks[n]["matched"] for n in names], width=0.27, color="#e0a040", label="matched")
    bottom = np.zeros(len(names))
    colors = ["#c0392b", "#8e44ad", "#2c3e50"]  # by screen, in contamination.METHODS order
    for method, color in zip(decontamination.get("screens", []), colors + ["#16a085"]):
        counts = np.array([benchmarks[n]["dropped_by"][method] for n in names], dtype=float)
        axis.bar(positions, counts, width=0.27, bottom=bottom, color=color, label=f"dropped: {method}")
        bottom += counts
    variants = "number variants (dropped)" if decontamination.get("number_variants_dropped") else \
        "number variants (released)"
    axis.bar(positions + 0.27, [benchmarks[n]["number_variants"] for n in names], width=0.27, color="#7f8c8d",
             label=variants)
    axis.set_xticks(positions, names)
    axis.set_ylabel("questions")
    axis.set_title("Decontamination: benchmark matches by screen")
    axis.legend(fontsize="small")
    _save(figure, path)


def samples_table(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Sample pairs as an HTML table (escaped: questions and responses are model output)."""
    def cell(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}g}"

    cells = "".join(
        f"<tr><td>{html.escape(row['id'])}</td><td>{html.escape(row['question'])}</td>"
        f"<td><pre>{html.escape(row['response'])}</pre></td><td>{cell(row['score'], 4)}</td>"
        f"<td>{cell(row['difficulty'], 3)}</td></tr>"
        for row in rows)
    write_text_atomic(path, "<table><thead><tr><th>id</th><th>question</th><th>response</th><th>reward</th>"
                            f"<th>difficulty</th></tr></thead><tbody>{cells}</tbody></table>\n")


def evaluation_table(scores_path: str | Path, path: str | Path) -> None:
    """The evaluation's table of scores (evaluation.scores.table_rows) as HTML."""
    header, *rows = table_rows(json.loads(Path(scores_path).read_text(encoding="utf-8")))
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    write_text_atomic(path, f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n")


def interruptions(stats_paths: Sequence[str | Path], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per checkpointed GPU stage, from its sidecars: shards, those that took more than one attempt, the
    attempts, the chunks resumed, and the GPU-hours spent and lost to interruptions (model loads and
    chunks in flight; a SIGKILLed attempt's time counts up to its last heartbeat)."""
    rows: dict[str, dict[str, Any]] = {}
    for path in stats_paths:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        record = payload.get("interruptions")
        if record is None:
            continue
        gpus = job_gpus(config, job_of(payload["stage"]).rule, payload["generator"])
        row = rows.setdefault(payload["stage"], {"stage": payload["stage"], "shards": 0, "interrupted": 0,
                                                 "attempts": 0, "resumed_chunks": 0, "gpu_hours": 0.0,
                                                 "lost_gpu_hours": 0.0})
        row["shards"] += 1
        row["interrupted"] += record["attempts"] > 1
        row["attempts"] += record["attempts"]
        row["resumed_chunks"] += record["resumed_chunks"]
        row["gpu_hours"] += (payload["seconds"] + record["lost_seconds"]) * gpus / 3600
        row["lost_gpu_hours"] += record["lost_seconds"] * gpus / 3600
    return list(rows.values())


def interruptions_table(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """The interruptions as an HTML table."""
    cells = "".join(
        f"<tr><td>{html.escape(row['stage'])}</td><td>{row['shards']}</td><td>{row['interrupted']}</td>"
        f"<td>{row['attempts']}</td><td>{row['resumed_chunks']}</td><td>{row['gpu_hours']:.3f}</td>"
        f"<td>{row['lost_gpu_hours']:.3f}</td></tr>" for row in rows)
    write_text_atomic(path, "<table><thead><tr><th>stage</th><th>shards</th><th>interrupted</th><th>attempts</th>"
                            "<th>chunks resumed</th><th>GPU-hours</th><th>GPU-hours lost</th></tr></thead>"
                            f"<tbody>{cells}</tbody></table>\n")


def preflight_table(report_paths: Sequence[str | Path], path: str | Path) -> None:
    """The preflight reports (one per Slurm partition and environment, scalequest/preflight.py) as an
    HTML table: where each ran, what the node offered, and every check's verdict."""
    rows = []
    for report_path in report_paths:
        report = json.loads(Path(report_path).read_text(encoding="utf-8"))
        facts, gpus = report["facts"], report["facts"]["gpus"]
        first = gpus[0] if gpus else None
        hardware = (f"{len(gpus)} x {first['name']} ({first['memory_mib']} MiB), driver {first['driver']}" if first
                    else facts["nvidia_smi_error"] or "no GPU")
        checks = "; ".join(f"{check['name']}: {'ok' if check['ok'] else 'FAILED'} ({check['found']})"
                           for check in report["checks"])
        cells = (report["partition"], report["env"], report["node"], hardware,
                 f"torch {facts['torch_version']}, CUDA {facts['torch_cuda'] or 'none (a CPU build)'}", checks)
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells) + "</tr>")
    if not rows:
        rows = ["<tr><td colspan=6>No preflight: the run's GPU jobs went to no Slurm partition.</td></tr>"]
    write_text_atomic(path, "<table><thead><tr><th>partition</th><th>environment</th><th>node</th><th>GPUs</th>"
                            "<th>torch</th><th>checks</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>\n")


def released_columns(data_dir: str | Path) -> dict[str, np.ndarray]:
    """The released pairs' measures the figures plot (lengths in characters)."""
    table = pq.read_table(data_dir, columns=["question", "response", "score", "margin", "difficulty"])

    def present(name):
        return pc.drop_null(table.column(name)).to_numpy() if table.num_rows else np.zeros(0)

    return {"question_chars": pc.utf8_length(table.column("question")).to_numpy(),
            "response_chars": pc.utf8_length(table.column("response")).to_numpy(),
            "score": present("score"), "margin": present("margin"), "difficulty": present("difficulty")}


def write_report_files(*, funnel_path: str | Path, data_dir: str | Path, stats_paths: Sequence[str | Path],
                       preflight_paths: Sequence[str | Path], config: Mapping[str, Any], samples: int, seed: int,
                       out: Mapping[str, str | Path]) -> None:
    """Every figure and table of the report: `out` maps funnel, lengths, rewards, difficulty,
    contamination, interruptions, preflight, samples and config to their paths (`stats_paths`: the GPU
    stages' sidecars; `preflight_paths`: the preflight reports)."""
    funnel = json.loads(Path(funnel_path).read_text(encoding="utf-8"))
    columns = released_columns(data_dir)
    funnel_figure(funnel, out["funnel"])
    distribution_figure(columns, [("question_chars", "Question length", "characters"),
                                  ("response_chars", "Response length", "characters")], out["lengths"])
    distribution_figure(columns, [("score", "Reward of the kept response", "reward score"),
                                  ("margin", "Best-of-n margin", "best score minus the runner-up's")], out["rewards"])
    difficulty_figure(funnel.get("difficulty"), out["difficulty"])
    contamination_figure(funnel["decontamination"], out["contamination"])
    interruptions_table(interruptions(stats_paths, config), out["interruptions"])
    preflight_table(preflight_paths, out["preflight"])
    table = pq.read_table(data_dir, columns=["id", "question", "response", "score", "difficulty"])
    picked = np.sort(np.random.default_rng(seed).permutation(table.num_rows)[:samples])
    samples_table(table.take(picked).to_pylist(), out["samples"])
    write_text_atomic(out["config"], yaml.safe_dump(dict(config), sort_keys=False))
