"""The dataset card (README.md of the release), written from funnel.json's numbers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .atomic import write_text_atomic

COLUMNS = {
    "id": "stable question id `{generator}-{shard}-{index}`",
    "generator": "the question generator's name in the config",
    "shard": "the shard that produced the question",
    "question": "the synthesized question",
    "question_model": "model that wrote the question",
    "question_seed": "seed of the generation shard",
    "difficulty": ("the difficulty scorer's predicted fail rate of the solver on the question "
                   "(empty when scoring is off)"),
    "response": "the highest-reward response",
    "score": "its reward score",
    "margin": "score minus the runner-up's score (empty when there was one candidate)",
    "candidates": "responses the reward model chose from",
    "response_model": "model that wrote the response",
    "reward_model": "the reward model that rated the responses",
}


def _size_category(count: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return label
    return "1M<n<10M"


def _funnel_table(funnel: Mapping[str, Any]) -> str:
    lines = ["| stage | unit | in | kept | dropped (reason: count) |", "|---|---|---|---|---|"]
    for entry in funnel["stages"]:
        for unit in ("questions", "responses"):
            if unit in entry:
                counts = entry[unit]
                dropped = ", ".join(f"{reason}: {n}" for reason, n in counts["dropped"].items() if n) or "-"
                lines.append(f"| {entry['stage']} | {counts['unit']} | {counts['in']} | {counts['kept']} | {dropped} |")
    return "\n".join(lines)


_SCREEN_TEXT = {  # each screen that ran, as the card says it (settings: the config's release.decontamination)
    "ngram": lambda settings, found: (f"copies of a benchmark test item (sharing {found['ngram']}-grams of normalized "
                                      "text: *ngram*)"),
    "lexical": lambda settings, found: (
        "rephrasings of one (the same numbers and math, cosine at least "
        f"{settings['lexical']['min_signature']:g}, numbers alone at least {settings['lexical']['min_numbers']:g}, "
        f"and much the same words, joint cosine at least {settings['lexical']['min_joint']:g}: *lexical*)"),
    "embedding": lambda settings, found: (
        f"close to one by the embedding model `{settings['embedding']['model']}` (cosine at least "
        f"{settings['embedding']['min_cosine']:g}: *embedding*)"),
    "judge": lambda settings, found: ("called the same problem as a candidate item by the judge model"
                                      f"{' `' + settings['judge']['model'] + '`' if settings['judge']['model'] else ''}"
                                      " (*judge*)"),
}


def _decontamination_table(decontamination: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    benchmarks = decontamination["benchmarks"]
    absent = decontamination["absent"]
    absent = ("\n\nNot checked (optional, their file was not there): "
              + ", ".join(f"{name} (`{path}`)" for name, path in absent.items()) + ".") if absent else ""
    if not benchmarks:
        return "No benchmarks were configured: the questions were not checked for contamination." + absent
    screens = [_SCREEN_TEXT[screen](settings, decontamination) for screen in decontamination["screens"]]
    dropped_by = decontamination["screens"] + (["number_variant"] if decontamination["number_variants_dropped"] else [])
    variants = ("*Number variants* (a benchmark question's words with other quantities) count as contaminated "
                "and were dropped." if decontamination["number_variants_dropped"] else
                "*Number variants* (a benchmark question's words with other quantities) do not count as "
                "contaminated: they were released, and are listed in `number_variants.jsonl`.")
    lines = [f"Questions that are {'; or '.join(screens)} were dropped (see `release.decontamination` in the "
             "settings); every one is listed, with the benchmark items it matches, the screen that caught it "
             f"and its scores, in `contamination.jsonl`. {variants} *Matched* counts the questions before "
             "deduplication, *dropped* those removed for that benchmark, by screen.", "",
             "| benchmark | source | items | matched | dropped | " + " | ".join(dropped_by) + " | number variants |",
             "|---|---|---|---|---|" + "---|" * len(dropped_by) + "---|"]
    for name, counts in benchmarks.items():
        by_screen = " | ".join(str(counts["dropped_by"][screen]) for screen in dropped_by)
        lines.append(f"| {name} | {counts['source']} | {counts['items']} | {counts['matched']} | {counts['dropped']} "
                     f"| {by_screen} | {counts['number_variants']} |")
    return "\n".join(lines) + absent


def _distributions_table(distributions: Mapping[str, Mapping[str, Any]]) -> str:
    columns = ["count", "mean", "min", "p5", "p25", "p50", "p75", "p95", "max"]
    lines = ["| measure | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for measure, summary in distributions.items():
        cells = ["-" if summary[column] is None else f"{summary[column]:g}" for column in columns]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _difficulty_section(difficulty: Mapping[str, Any] | None) -> str:
    if not difficulty:
        return "Difficulty scoring was off: the questions were not sampled by difficulty."
    bins = difficulty["bins"]
    labels = [f"[{low:g}, {high:g})" for low, high in zip(bins, bins[1:])]
    labels[0], labels[-1] = f"< {bins[1]:g}", f">= {bins[-2]:g}"
    scorer = difficulty["scorer"]
    lines = [f"A difficulty scorer (a regression head trained on the solver's fail rates on the seed questions) "
             f"scored every question that passed the filters; keep rule `{difficulty['rule']}` "
             f"(`difficulty.keep` in the settings) then sampled them. Scorer on {scorer['held_out_questions']} "
             f"held-out seed questions: MSE {_number(scorer['held_out_mse'])} (mean predictor "
             f"{_number(scorer['mean_predictor_mse'])}), Pearson r {_number(scorer['held_out_pearson'])}.", "",
             "| predicted fail rate | scored | sampled | released |", "|---|---|---|---|"]
    for label, scored, sampled, released in zip(labels, difficulty["scored"], difficulty["sampled"],
                                                difficulty["released"]):
        lines.append(f"| {label} | {scored} | {sampled} | {released} |")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def render_card(*, name: str, funnel: Mapping[str, Any], settings: Mapping[str, Any],
                sample: Sequence[Mapping[str, Any]]) -> str:
    """Markdown with a Hugging Face YAML header; every number comes from `funnel`."""
    header = {
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
        "language": ["en"],
        "task_categories": ["text-generation", "question-answering"],
        "tags": ["math", "synthetic", "scalequest"],
        "size_categories": [_size_category(funnel["released_pairs"])],
    }
    models = "\n".join(f"- {role}: {', '.join(ids)}" for role, ids in funnel["models"].items())
    columns = "\n".join(f"- `{column}`: {text}" for column, text in COLUMNS.items())
    examples = "\n\n".join(f"**Q:** {row['question']}\n\n**A:** {row['response']}" for row in sample)
    return f"""---
{yaml.safe_dump(header, sort_keys=False).strip()}
---

# {name}

{funnel['released_pairs']} math question/response pairs synthesized from scratch with the ScaleQuest
method (arXiv 2410.18693): question generators write questions, a solver judges their solvability
and answers each one several times, and a reward model keeps the best answer.

## Load

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_files="data/*.parquet", split="train")
```

## Funnel

{_funnel_table(funnel)}

Released pairs: **{funnel['released_pairs']}** in {len(funnel['files'])} file(s).

Exact duplicates (normalized text) and near-duplicates (MinHash LSH over word n-grams, see
`release.near_dup` in the settings) are dropped, keeping the copy with the highest reward score.

## Decontamination

{_decontamination_table(funnel['decontamination'], settings.get('release', {}).get('decontamination', {}))}

## Difficulty

{_difficulty_section(funnel.get('difficulty'))}

## Distributions

Of the released pairs (lengths in characters; margin: best score minus the runner-up's).

{_distributions_table(funnel['distributions'])}

## Models

{models}

## Columns

{columns}

## Settings

```json
{json.dumps(settings, indent=2, sort_keys=True)}
```

## Examples

{examples or '(no pairs)'}
"""


def card_with_evaluation(card: str, table: str | None) -> str:
    """The release's card, with the evaluation's table (measured on this run) before its
    Decontamination section when the evaluation ran."""
    if table is None:
        return card
    section = ("## Evaluation\n\nMeasured on this run: base models fine-tuned on these pairs (and on the "
               "other configured datasets), then scored zero-shot on the benchmarks.\n\n" + table.strip() + "\n\n")
    before, marker, after = card.partition("## Decontamination")
    return before + section + marker + after if marker else card + "\n" + section


def write_card(card_path: str | Path, table_path: str | Path | None, out: str | Path) -> None:
    """Rule card: the release job's card, with the evaluation's table (a Markdown file) when given."""
    table = Path(table_path).read_text(encoding="utf-8") if table_path else None
    write_text_atomic(out, card_with_evaluation(Path(card_path).read_text(encoding="utf-8"), table))
