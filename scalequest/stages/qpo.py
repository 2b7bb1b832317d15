"""QPO data: the optimizer rewrites each question the QFT model sampled, and each valid rewrite
becomes a preference pair (chosen = rewrite, rejected = raw question)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..chunks import LazyEngine, ShardChunks
from ..digests import file_digest
from ..engines import Sampling, open_chat
from ..models import ModelSpec
from ..normalize import normalize_question
from ..prompts import REWRITE_PROMPTS
from ..records import PAIRS, QUESTIONS, read_shard
from ..rewrite import extract_rewrite
from ..stats import ShardStats
from .filter import judge_solvability
from .shard_io import write_stage_outputs


def rewrite_drop_reason(rewrite: str | None, raw: str) -> str | None:
    """Why a rewrite cannot be the chosen side of a pair, or None."""
    if rewrite is None:
        return "no_marker"
    if not rewrite:
        return "empty_rewrite"
    if normalize_question(rewrite) == normalize_question(raw):
        return "unchanged"
    return None


def build_pairs(*, generator: str, samples_path: str | Path, optimizer: ModelSpec, prompts: Sequence[str],
                sampling: Mapping[str, Any], judge: ModelSpec | None, judge_sampling: Mapping[str, Any],
                seed: int, cache_dir: str | Path | None, chunk_size: int, out: str | Path) -> ShardStats:
    """Rewrite every sampled question through `prompts` in order (each rewrite feeds the next),
    keep the valid, changed rewrites (and, with a judge, only those it calls solvable), and
    write the pairs shard with its stats. Every dropped question is counted by reason."""
    rows = read_shard(samples_path, QUESTIONS).select(["id", "question"]).to_pylist()
    models = {"optimizer": optimizer.describe(), **({"judge": judge.describe()} if judge else {})}
    stats = ShardStats("qpo_rewrite", generator, "00000", seed, models)
    current = {row["id"]: row["question"] for row in rows}
    replies: dict[str, str] = {}
    with ShardChunks(out, stage="qpo_rewrite", generator=generator, shard="00000", chunk_size=chunk_size,
                     settings={"seed": seed, "input": file_digest(samples_path)}) as chunks:
        with LazyEngine(open_chat, optimizer, seed, cache_dir=str(cache_dir) if cache_dir else None) as engine:
            for number, name in enumerate(prompts, 1):
                prompt = REWRITE_PROMPTS[name]
                ids = list(current)
                answers = chunks.chat(engine, [prompt.messages(current[i]) for i in ids],
                                      Sampling.from_config(sampling, seed=seed), call=f"rewrite{number}-{name}")
                for question_id, answer in zip(ids, answers):
                    if answer is None:
                        stats.questions.drop("optimizer_prompt_too_long")
                        del current[question_id]
                        continue
                    stats.counters["optimizer_tokens"] += answer.tokens
                    rewrite = extract_rewrite(answer.text, prompt)
                    reason = rewrite_drop_reason(rewrite, current[question_id])
                    if reason:
                        stats.questions.drop(reason)
                        del current[question_id]
                    else:
                        current[question_id], replies[question_id] = rewrite, answer.text
        raw = {row["id"]: row["question"] for row in rows}
        survivors = [i for i in current if normalize_question(current[i]) != normalize_question(raw[i])]
        if len(survivors) < len(current):  # a chain of rewrites can come back to the raw question
            stats.questions.drop("unchanged", len(current) - len(survivors))
        if judge is not None:
            verdicts = judge_solvability(judge, [current[i] for i in survivors], judge_sampling, seed, chunks, "judge")
            judged = []
            for question_id, (reason, _) in zip(survivors, verdicts):
                if reason:
                    stats.questions.drop(f"rewrite_{reason}")
                else:
                    judged.append(question_id)
            survivors = judged
        stats.questions.keep(len(survivors))
        pairs = [{"id": i, "generator": generator, "rejected": raw[i], "chosen": current[i],
                  "optimizer_model": optimizer.describe(), "optimizer_reply": replies[i]} for i in survivors]
        return write_stage_outputs(pairs, PAIRS, out, chunks.finish(stats))
