"""The funnel: per stage, what came in, what was kept and what was dropped, summed from the
shards' stats sidecars and checked for conservation along the chain of stages."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from .registry import chain_stages
from .stats import Funnel, StatsError, read_stats

# Per-shard stages in data-flow order (scalequest/registry.py); each one's `in` is the previous one's `kept`.
SHARD_STAGES = chain_stages(difficulty=True)


def load_stage_stats(paths_by_stage: Mapping[str, Sequence[str | Path]]) -> dict[str, dict[tuple[str, str], dict]]:
    """{stage: {(generator, shard): sidecar}} for the given sidecar paths."""
    loaded: dict[str, dict[tuple[str, str], dict]] = {}
    for stage, paths in paths_by_stage.items():
        loaded[stage] = {}
        for path in paths:
            payload = read_stats(path)
            if payload.get("stage") != stage:
                raise StatsError(f"{path}: sidecar of stage '{payload.get('stage')}' listed under '{stage}'")
            loaded[stage][(payload["generator"], payload["shard"])] = payload
    return loaded


def check_chain(loaded: Mapping[str, Mapping[tuple[str, str], dict]], stages: Sequence[str]) -> None:
    """Raise StatsError where a shard's `in` at one stage differs from its `kept` at the stage
    before: questions lost (or gained) between stages, e.g. from a stale shard."""
    for upstream, downstream in zip(stages, stages[1:]):
        for key, after in loaded[downstream].items():
            before = loaded[upstream].get(key)
            if before is None:
                raise StatsError(f"{downstream} shard {key} has no {upstream} sidecar")
            if after["questions"].total != before["questions"].kept:
                raise StatsError(
                    f"shard {key[0]}/{key[1]}: {upstream} kept {before['questions'].kept} questions "
                    f"but {downstream} received {after['questions'].total}"
                )


def summarize(loaded: Mapping[str, Mapping[tuple[str, str], dict]], stages: Sequence[str]) -> list[dict[str, Any]]:
    """Per stage: totals for questions (and responses where the stage counts them), with a
    per-generator breakdown and counters. Timings stay in the sidecars, so that the same
    run gives the same summary."""
    summary = []
    for stage in stages:
        totals: dict[str, Funnel] = {}
        by_generator: dict[str, Funnel] = defaultdict(lambda: Funnel())
        counters: dict[str, int] = defaultdict(int)
        for (generator, _), payload in sorted(loaded[stage].items()):
            for unit in ("questions", "responses"):
                if unit in payload:
                    totals.setdefault(unit, Funnel(unit=payload[unit].unit)).add(payload[unit])
            by_generator[generator].add(payload["questions"])
            for name, value in payload.get("counters", {}).items():
                counters[name] += value
        entry: dict[str, Any] = {"stage": stage, "shards": len(loaded[stage])}
        for unit, funnel in totals.items():
            entry[unit] = funnel.to_json()
        entry["by_generator"] = {name: funnel.to_json() for name, funnel in sorted(by_generator.items())}
        entry["counters"] = dict(sorted(counters.items()))
        summary.append(entry)
    return summary


def models_used(loaded: Mapping[str, Mapping[tuple[str, str], dict]]) -> dict[str, list[str]]:
    """{role: sorted model ids} over all sidecars (generator, judge, responder, reward)."""
    roles: dict[str, set[str]] = defaultdict(set)
    for shards in loaded.values():
        for payload in shards.values():
            for role, model in payload.get("models", {}).items():
                roles[role].add(model)
    return {role: sorted(models) for role, models in sorted(roles.items())}
