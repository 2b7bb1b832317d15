"""scalequest-decontaminate: screen any dataset's questions against the configured benchmarks.

It runs the workflow's screens (n-gram overlap, the lexical screen for rephrasings, number variants,
and the embedding and judge screens where the config turns them on, their models loaded here)
with the settings of `release.decontamination` in the config files, and writes one JSON line per
match: the question's 1-based line in the input, the benchmark and item, the screen and its scores,
and whether the workflow would drop the question for it. No Snakemake and no network are needed
when the benchmarks have local `path`s.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence, TextIO

import numpy as np

from .atomic import atomic_path
from .config import ConfigError, contamination_embedder, contamination_judge, load_config_files
from .contamination import (
    LEXICAL_SCORES,
    METHODS,
    NUMBER_VARIANT,
    BenchmarkItems,
    ScreenSettings,
    build_benchmark_items,
    drops,
    screen_questions,
)
from .decontam import BenchmarkError, benchmarks_in_use
from .engines import Sampling, open_chat, open_embedder
from .jsonl import MAX_LINE_BYTES, InputFileError, read_question_lines
from .model_screens import Embed, Judge, ModelScreenSettings, model_matches
from .models import ModelSpec
from .progress import progress

BLOCK = 10_000  # questions screened at once (memory: a few MB a block)
SCORES = ("shared_ngrams", "overlap") + LEXICAL_SCORES + ("cosine",)
SCREEN_ORDER = METHODS + (NUMBER_VARIANT,)


def match_lines(matches: Iterable[dict[str, Any]], lines: Sequence[int], drop_variants: bool) -> list[dict[str, Any]]:
    """The command's output records for `screen_questions` matches (`lines`: each question's line)."""
    return [{"line": lines[match["question"]], "benchmark": match["benchmark"], "item": match["item"],
             "benchmark_question": match["benchmark_question"], "method": match["method"],
             "scores": {name: match[name] for name in SCORES if name in match},
             **({"judge_reply": match["judge_reply"]} if "judge_reply" in match else {}),
             "dropped": drops(match, drop_variants)} for match in matches]


@dataclass(frozen=True)
class ModelScreens:
    """The screens with models, as the command runs them: engines called directly, no chunks."""

    settings: ModelScreenSettings
    embed: Embed | None
    judge: Judge | None


def model_screens(config: dict[str, Any], benchmarks: BenchmarkItems, stack: ExitStack) -> ModelScreens | None:
    """The configured screens with models, their engines opened (closed with `stack`); None when off."""
    embedder_key, judge_key = contamination_embedder(config), contamination_judge(config)
    if not (embedder_key or judge_key):
        return None
    decontamination = config["release"]["decontamination"]
    embed = judge = None
    if embedder_key:
        embedder = stack.enter_context(open_embedder(ModelSpec.from_config(config, embedder_key), config["seed"]))
        items = np.asarray(embedder.embed_texts(benchmarks.questions)[0])  # once, not once per block

        def embed(texts: Sequence[str], call: str) -> np.ndarray:
            return items if call == "embed-benchmarks" else np.asarray(embedder.embed_texts(texts)[0])
    if judge_key:
        chat = stack.enter_context(open_chat(ModelSpec.from_config(config, judge_key), config["seed"]))
        sampling = Sampling.from_config(decontamination["judge"]["sampling"], seed=config["seed"])

        def judge(conversations: list, call: str) -> list:
            return chat.chat(conversations, sampling)
    return ModelScreens(ModelScreenSettings.from_config(decontamination), embed, judge)


def screen_block(questions: Sequence[str], benchmarks: BenchmarkItems, settings: ScreenSettings,
                 models: ModelScreens | None, counters: Counter) -> list[dict[str, Any]]:
    """Every screen's matches for a block of questions, as the screen and model_screen jobs find them."""
    found = screen_questions(questions, benchmarks, settings)
    if models is None:
        return found
    caught = {(match["question"], match["benchmark"]) for match in found if match["method"] in METHODS}
    found += model_matches(questions, benchmarks, models.settings, caught, models.embed, models.judge, counters)
    return sorted(found, key=lambda match: (match["question"], match["benchmark"]))


def screen_file(path: str | Path, field: str, config: dict[str, Any]) -> tuple[list[dict[str, Any]], int, dict]:
    """(output records, questions read, benchmark summary) for a JSONL file of questions."""
    decontamination = config["release"]["decontamination"]
    settings = ScreenSettings.from_config(decontamination)
    used, absent = benchmarks_in_use(decontamination["benchmarks"])
    for name, missing in absent.items():
        print(f"scalequest-decontaminate: benchmark {name} left out (optional, {missing} does not exist)",
              file=sys.stderr)
    if not used:
        raise BenchmarkError("release.decontamination.benchmarks: no benchmark to screen against")
    lines, questions = [], []
    for line, question in read_question_lines(path, field):  # first: a bad input stops before the benchmarks load
        lines.append(line)
        questions.append(question)
    benchmarks, summary = build_benchmark_items(used, settings.ngram)
    records, counters = [], Counter()
    with ExitStack() as stack, progress(desc="screening", total=len(questions), unit="q") as bar:
        models = model_screens(config, benchmarks, stack)
        for start in range(0, len(questions), BLOCK):
            block = questions[start:start + BLOCK]
            found = screen_block(block, benchmarks, settings, models, counters)
            records += match_lines(found, lines[start:start + BLOCK], settings.drop_variants)
            bar.update(len(block))
    summary["judge"] = {name: count for name, count in counters.items() if name.startswith("judge")}
    return records, len(questions), summary


def summarize(records: Sequence[dict[str, Any]], questions: int, summary: dict, path: str | Path) -> str:
    """The printed summary: flagged questions, then matches per benchmark and screen."""
    flagged = len({record["line"] for record in records if record["dropped"]})
    variants = len({record["line"] for record in records if record["method"] == NUMBER_VARIANT})
    counts = Counter((record["benchmark"], record["method"]) for record in records)
    methods = sorted({method for _, method in counts}, key=lambda method: SCREEN_ORDER.index(method))
    share = f" ({flagged / questions:.2%})" if questions else ""
    lines = [f"{path}: {questions} questions; {flagged} contaminated{share}, {variants} with a number variant",
             f"{'benchmark':<16}{'items':>8}" + "".join(f"{method:>16}" for method in methods)]
    for about in summary["benchmarks"]:
        lines.append(f"{about['name']:<16}{about['items']:>8}"
                     + "".join(f"{counts[about['name'], method]:>16}" for method in methods))
    if summary.get("judge"):
        lines.append("judge: " + ", ".join(f"{name.removeprefix('judge_')} {count}"
                                           for name, count in sorted(summary["judge"].items())))
    return "\n".join(lines) + "\n"


def write_records(records: Sequence[dict[str, Any]], out: TextIO) -> None:
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def file_error(error: OSError) -> str:
    """An error opening a file the command reads or writes, in one line naming the file."""
    reasons = {FileNotFoundError: "no such file", IsADirectoryError: "a folder, not a file"}
    return f"{error.filename}: {reasons.get(type(error), error.strerror)}" if error.filename else str(error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scalequest-decontaminate", description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", metavar="QUESTIONS.jsonl",
                        help=f"one JSON object a line; a line of it or of a benchmark file holds at most "
                             f"{MAX_LINE_BYTES // 2**20} MiB")
    parser.add_argument("--config", nargs="+", required=True, metavar="CONFIG",
                        help="config files, later ones over earlier ones (as snakemake --configfile); "
                             "the screens and benchmarks of release.decontamination are used")
    parser.add_argument("--field", default="question", help="the questions' field (default: question)")
    parser.add_argument("--out", metavar="MATCHES.jsonl",
                        help="write the matches here (default: standard output, with the summary on standard error)")
    args = parser.parse_args(argv)
    if args.out:  # said now, not after the screens
        if Path(args.out).is_dir():
            parser.error(f"--out {args.out}: a folder; give the path of the file to write")
        if file := next((folder for folder in Path(args.out).parents if folder.is_file()), None):
            parser.error(f"--out {args.out}: {file} is a file, not a folder")
    try:
        records, questions, summary = screen_file(args.questions, args.field, load_config_files(*args.config))
        if args.out:
            with atomic_path(args.out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
                write_records(records, handle)
    except (ConfigError, BenchmarkError, InputFileError) as error:
        print(f"scalequest-decontaminate: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"scalequest-decontaminate: {file_error(error)}", file=sys.stderr)
        return 2
    if args.out:
        print(f"{len(records)} matches written to {args.out}")
        sys.stdout.write(summarize(records, questions, summary, args.questions))
    else:
        write_records(records, sys.stdout)
        sys.stderr.write(summarize(records, questions, summary, args.questions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
