"""Question sources named in the config: a local JSONL file, a Hugging Face Hub dataset, or the
embedded tiny corpus. Seed questions (QFT) read them; every question keeps its source's name."""
from __future__ import annotations

from typing import Any, Mapping

from .jsonl import answer_text, read_questions, read_questions_with_answers


class SourceError(ValueError):
    """A configured source cannot be read; the message names the source and what to do."""


def load_source(source: Mapping[str, Any], seed: int = 0) -> list[str]:
    """Every question of one source, in file order.

    `source` holds one of: `path` (JSONL, one object a line, `field` the question), `hub` (a
    Hugging Face dataset id, with optional `subset` and `split`), or `tiny` (a count of
    templated problems from the embedded corpus, drawn with `seed`).
    """
    if "path" in source:
        return [question for _, question in read_questions(source["path"], source["field"])]
    return [question for question, _ in load_source_with_answers(source, seed)]


def load_source_with_answers(source: Mapping[str, Any], seed: int = 0) -> list[tuple[str, str | None]]:
    """(question, gold answer text) for every record of one source; the answer text is None where a
    record has none, or for every record when the source names no `answer_field` (the tiny corpus
    carries its own answers; unsolvable problems have none)."""
    answer_field = source.get("answer_field")
    if "path" in source:
        if answer_field is None:
            return [(question, None) for question in load_source(source)]
        return list(read_questions_with_answers(source["path"], source["field"], answer_field))
    if "hub" in source:
        return _load_hub(source)
    if "tiny" in source:
        from .tiny.corpus import make_problems

        return [(problem.question, None if problem.answer is None else str(problem.answer))
                for problem in make_problems(source["tiny"], seed)]
    raise SourceError(f"source '{source.get('name')}': needs one of path, hub or tiny")


def _load_hub(source: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    import datasets

    where = (f"source '{source.get('name')}' ({source['hub']}{'/' + source['subset'] if source.get('subset') else ''}, "
             f"split {source.get('split', 'train')})")
    try:
        dataset = datasets.load_dataset(source["hub"], source.get("subset"), split=source.get("split", "train"))
    except Exception as err:  # datasets raises many types (offline, missing, auth): name the source
        raise SourceError(f"{where}: cannot load from the Hugging Face Hub ({type(err).__name__}: {err}). "
                          "Run the prefetch on a node with network access, or give a local `path`.") from err
    fields = [source["field"]] + ([source["answer_field"]] if source.get("answer_field") else [])
    for field in fields:
        if field not in dataset.column_names:
            raise SourceError(f"{where}: no '{field}' column (columns: {', '.join(dataset.column_names)})")
    questions = list(dataset[fields[0]])
    try:
        answers = [answer_text(a) for a in dataset[fields[1]]] if len(fields) > 1 else [None] * len(questions)
    except TypeError as err:
        raise SourceError(f"{where}: '{fields[1]}' {err}") from None
    return list(zip(questions, answers))
