"""Time and peak memory of the release's CPU stages on a synthetic question set, beside a
single-process datasketch MinHashLSH baseline.

    .venv/bin/python benchmarks/cpu_stages.py --questions 100000
    .venv/bin/python benchmarks/cpu_stages.py --questions 2000000 --workdir /tmp/bench-2m
    .venv/bin/python benchmarks/cpu_stages.py --workdir /tmp/bench-2m --only lsh_band,dedup   # measure again
    .venv/bin/python benchmarks/cpu_stages.py --questions 2000000 --response-chars 2000 --workdir /tmp/bench-2m-2k \
        --only minhash,lsh_band,dedup,benchmark_index,decontaminate_lexical,merge,merge_in_memory --memory-limit-gb 20

The set has planted near-duplicates (small edits, some exact copies) and planted GSM8K/MATH test
questions (verbatim or reformatted; read from ../shared/data, or SCALEQUEST_SHARED_DATA). It is
written as best shards of --shard-size rows; every stage then runs the package's own stage
functions the way the workflow's jobs do: one call per shard (or per LSH band) spread over
--processes worker processes, then the single join. Each stage runs in a fresh process; its peak
memory is the largest sum of the resident memory of that process and its workers (benchmarks/measure.py).
The merge (the streaming `release`) is measured beside the in-memory merge it replaced
(`merge_in_memory`, kept here only as that baseline).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from measure import measure  # noqa: E402  (benchmarks/measure.py, beside this script)

from scalequest.atomic import atomic_dir, write_json_atomic, write_text_atomic  # noqa: E402
from scalequest.card import render_card  # noqa: E402
from scalequest.config import load_config_files, load_schema  # noqa: E402
from scalequest.contamination import METHODS, ScreenSettings  # noqa: E402
from scalequest.distributions import release_distributions  # noqa: E402
from scalequest.funnel import SHARD_STAGES, check_chain, load_stage_stats, models_used, summarize  # noqa: E402
from scalequest.language import language_drop_reason  # noqa: E402
from scalequest.neardup import pair_jaccard  # noqa: E402
from scalequest.ngrams import ngram_sets  # noqa: E402
from scalequest.normalize import normalize_for_matching, normalize_question  # noqa: E402
from scalequest.records import BEST, RELEASE, read_shard, write_shard  # noqa: E402
from scalequest.stages.decontaminate import (  # noqa: E402
    MATCHES,
    decontaminate_shard,
    index_benchmarks,
    load_benchmark_items,
)
from scalequest.stages.dedup import find_duplicates, lsh_band, minhash_shard, read_duplicates  # noqa: E402
from scalequest.stages.release import DropRule, attribute_contamination, contamination_reason, release  # noqa: E402
from scalequest.stats import Funnel, ShardStats, StatsError, write_stats  # noqa: E402
from scalequest.synthetic import planted_question_set  # noqa: E402

SHARED_DATA = Path(os.environ.get("SCALEQUEST_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCHMARKS = {"gsm8k": ("gsm8k_test", "question"), "math": ("math_test", "problem"),
              "math500": ("math500_test", "problem"), "college_math": ("college_math_test", "question"),
              "olympiadbench": ("olympiadbench_test", "question")}
_RELEASE = load_schema()["properties"]["release"]["properties"]
NEAR_DUP = {key: spec["default"] for key, spec in _RELEASE["near_dup"]["properties"].items()}
DECONTAMINATION = load_config_files(REPO / "config.yaml")["release"]["decontamination"]  # the screens' settings
SCREENS = ScreenSettings.from_config(DECONTAMINATION)
NGRAM_ONLY = ScreenSettings.from_config({**DECONTAMINATION,
                                         "lexical": {**DECONTAMINATION["lexical"], "enabled": False}})
SEED = 1234
GENERATOR = "synthetic"
RESPONSE_CHARS = 325  # the length of the fixed response the set had before --response-chars
ROWS_PER_FILE = 250_000
# Responses: words of a math-ish vocabulary and numbers, drawn at random, so that every pair's differs
# and Parquet compresses them about as well as real ones (3-4x), not to nothing as with one repeated text.
RESPONSE_WORDS = ("we compute step by step add the numbers then multiply subtract divide gives total so sum "
                  "product each equals hence thus therefore let x y be of and a is in to from with").split()
RESPONSE_END = " The answer is \\boxed{42}."


# ---- the question set -----------------------------------------------------------------------

def benchmark_questions() -> list[str]:
    questions = []
    for name in ("gsm8k", "math"):
        file, field = BENCHMARKS[name]
        with open(SHARED_DATA / f"{file}.jsonl", encoding="utf-8") as handle:
            questions.extend(json.loads(line)[field] for line in handle)
    return questions


def responses(count: int, chars: int, rng: np.random.Generator) -> pa.Array:
    """`count` different responses of `chars` characters each (ASCII): random RESPONSE_WORDS and
    numbers, ending in RESPONSE_END. Built as one byte buffer with numpy: 2M x 2 KB in a minute."""
    vocabulary = [word.encode() + b" " for word in RESPONSE_WORDS * 4 + [str(number) for number in range(200)]]
    lengths = np.array([len(word) for word in vocabulary])
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    flat = np.frombuffer(b"".join(vocabulary), np.uint8)
    end = np.frombuffer(RESPONSE_END.encode()[-chars:], np.uint8)
    body = chars - len(end)
    words = np.zeros(0, np.int64)
    while lengths[words].sum() < count * body:  # draw words until they make enough bytes
        words = np.concatenate((words, rng.integers(len(vocabulary), size=int(count * body / lengths.mean()) + 8)))
    picked = lengths[words]
    # Byte i of the stream is byte (i - where its word begins) of that word in `flat`.
    within = np.arange(picked.sum()) - np.repeat(np.cumsum(picked) - picked, picked)
    stream = flat[np.repeat(starts[words], picked) + within][:count * body]
    data = np.hstack((stream.reshape(count, body), np.broadcast_to(end, (count, len(end))))).reshape(-1)
    offsets = np.arange(count + 1, dtype=np.int32) * chars
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data)))


def write_question_set(workdir: Path, questions: int, shard_size: int, response_chars: int) -> None:
    """Best shards (+ sidecars) of a planted set, with responses of `response_chars` characters;
    what was planted goes to planted.json."""
    benchmark = benchmark_questions()
    copies, benchmark_copies = int(questions * 0.04), min(len(benchmark), int(questions * 0.01))
    planted = planted_question_set(questions - copies - benchmark_copies, near_duplicates=copies, benchmark=benchmark,
                                   benchmark_copies=benchmark_copies, seed=SEED)
    rng = np.random.default_rng(SEED)
    scores = rng.random(len(planted.questions))
    for shard, start in enumerate(range(0, len(planted.questions), shard_size)):
        part = planted.questions[start:start + shard_size]
        ids = [f"{GENERATOR}-{shard:05d}-{start + i}" for i in range(len(part))]
        table = pa.table({"id": ids, "generator": [GENERATOR] * len(part), "shard": [shard] * len(part),
                          "question": part, "question_model": ["none"] * len(part), "question_seed": [SEED] * len(part),
                          "difficulty": [None] * len(part),
                          "response": responses(len(part), response_chars, rng),
                          "score": scores[start:start + len(part)],
                          "margin": [None] * len(part), "candidates": [1] * len(part),
                          "response_model": ["none"] * len(part), "reward_model": ["none"] * len(part)},
                         schema=BEST.schema)
        path = workdir / "best" / GENERATOR / f"{shard:05d}.parquet"
        write_shard(table, BEST, path)
        stats = ShardStats("best", GENERATOR, f"{shard:05d}", SEED, {})
        stats.questions.keep(len(part))
        write_stats(path.with_name(f"{shard:05d}.stats.json"), stats)
    (workdir / "planted.json").write_text(json.dumps({
        "ids": [f"{GENERATOR}-{position // shard_size:05d}-{position}" for position in range(len(planted.questions))],
        "near_duplicate_of": planted.near_duplicate_of, "benchmark_item": planted.benchmark_item,
        "response_chars": response_chars}))


# ---- the stages, each run in its own process ------------------------------------------------

def shards(workdir: Path, stage: str) -> list[Path]:
    """A stage's shards; those of a per-shard stage are <stage>/<generator>/<shard>.parquet, as in the
    workflow (the readers check that a shard's rows belong to its generator and number)."""
    return sorted((workdir / stage).rglob("*.parquet"))


def language_shard(path: Path) -> int:
    questions = read_shard(path, BEST).column("question").to_pylist()
    return sum(language_drop_reason(question, "ascii") is not None for question in questions)


def minhash_one(args: tuple[Path, Path]) -> int:
    best, out = args
    return minhash_shard(best_path=best, out=out, ngram=NEAR_DUP["ngram"], num_perm=NEAR_DUP["num_perm"],
                         bands=NEAR_DUP["bands"], seed=SEED)


def band_one(args: tuple[list[Path], int, Path]) -> int:
    paths, band, out = args
    return lsh_band(minhash_paths=paths, band=band, out=out)


def decontaminate_one(args: tuple[Path, Path, Path, ScreenSettings]) -> int:
    """One screen job's matches: the index loaded and the shard screened, as rule screen does."""
    best, benchmarks, out, settings = args
    loaded = load_benchmark_items(items_path=benchmarks / "items.parquet", index_path=benchmarks / "ngrams.npz",
                                  lexical_path=benchmarks / "lexical.npz", ngram=settings.ngram)
    return decontaminate_shard(best_path=best, benchmarks=loaded, settings=settings, out=out).num_rows


def real_questions(count: int, shard_size: int, workdir: Path) -> list[Path]:
    """`count` real questions (GSM8K and MATH train, over and over) as best shards, written once in
    the workdir: what the lexical screen costs on text like the generators', not on random words."""
    written = sorted((workdir / "real" / "best").rglob("*.parquet"))
    if sum(pq.read_metadata(path).num_rows for path in written) == count:
        return written
    texts = [json.loads(line)[field] for file, field in (("gsm8k_train", "question"), ("math_train", "problem"))
             for line in (SHARED_DATA / f"{file}.jsonl").read_text(encoding="utf-8").splitlines()]
    paths = []
    for shard, start in enumerate(range(0, count, shard_size)):
        rows = min(shard_size, count - start)
        ids = [f"{GENERATOR}-{shard:05d}-{row}" for row in range(rows)]
        table = pa.table({"id": ids, "generator": [GENERATOR] * rows, "shard": [shard] * rows,
                          "question": [texts[(start + row) % len(texts)] for row in range(rows)],
                          "question_model": ["m"] * rows, "question_seed": [0] * rows, "difficulty": [None] * rows,
                          "response": ["r"] * rows, "score": [0.0] * rows, "margin": [None] * rows,
                          "candidates": [1] * rows, "response_model": ["m"] * rows, "reward_model": ["r"] * rows},
                         schema=BEST.schema)
        paths.append(workdir / "real" / "best" / GENERATOR / f"{shard:05d}.parquet")
        write_shard(table, BEST, paths[-1])
    return paths


def run_stage(stage: str, workdir: Path, processes: int) -> dict:
    best = shards(workdir, "best")
    if stage == "language":
        with Pool(processes) as pool:
            return {"dropped": sum(pool.map(language_shard, best))}
    if stage == "minhash":
        with Pool(processes) as pool:
            jobs = [(path, workdir / "minhash" / GENERATOR / path.name) for path in best]
            return {"rows": sum(pool.map(minhash_one, jobs))}
    if stage == "lsh_band":
        minhash = shards(workdir, "minhash")
        jobs = [(minhash, band, workdir / "bands" / f"{band:02d}.parquet") for band in range(NEAR_DUP["bands"])]
        with Pool(processes) as pool:
            return {"pairs": sum(pool.map(band_one, jobs))}
    if stage == "dedup":
        table = find_duplicates(minhash_paths=shards(workdir, "minhash"), band_paths=shards(workdir, "bands"),
                                threshold=NEAR_DUP["threshold"], out=workdir / "duplicates.parquet")
        return {reason: count for reason, count in zip(*np.unique(table.column("reason").to_numpy(zero_copy_only=False),
                                                                   return_counts=True))}
    if stage == "benchmark_index":
        entries = {name: {"path": str(SHARED_DATA / f"{file}.jsonl"), "field": field}
                   for name, (file, field) in BENCHMARKS.items()}
        summary = index_benchmarks(benchmarks=entries, ngram=DECONTAMINATION["ngram"],
                                   items_out=workdir / "benchmarks" / "items.parquet",
                                   index_out=workdir / "benchmarks" / "ngrams.npz",
                                   lexical_out=workdir / "benchmarks" / "lexical.npz",
                                   summary_out=workdir / "benchmarks" / "benchmarks.json")
        return {"items": sum(about["items"] for about in summary["benchmarks"])}
    if stage in ("decontaminate", "decontaminate_lexical"):  # the n-gram screen alone; all the screens
        settings = NGRAM_ONLY if stage == "decontaminate" else SCREENS
        jobs = [(path, workdir / "benchmarks", workdir / stage / GENERATOR / path.name, settings) for path in best]
        with Pool(processes) as pool:
            return {"matches": sum(pool.map(decontaminate_one, jobs))}
    if stage in ("ngram_real_text", "lexical_real_text"):
        questions = rows_of(workdir)  # as many as the synthetic set
        real = real_questions(questions, 10_000, workdir)  # main() wrote them
        settings = NGRAM_ONLY if stage == "ngram_real_text" else SCREENS
        jobs = [(path, workdir / "benchmarks", workdir / stage / GENERATOR / path.name, settings) for path in real]
        with Pool(processes) as pool:
            return {"questions": questions, "matches": sum(pool.map(decontaminate_one, jobs))}
    if stage in ("merge", "merge_in_memory"):
        out = workdir / ("release" if stage == "merge" else "release_in_memory")
        merge = release if stage == "merge" else release_in_memory
        funnel = merge(best_paths=best, stats_paths={"best": sorted((workdir / "best").rglob("*.stats.json"))},
                       duplicates_path=workdir / "duplicates.parquet",
                       contamination_paths=shards(workdir, "decontaminate_lexical"),
                       benchmarks_path=workdir / "benchmarks" / "benchmarks.json", absent_benchmarks={}, seed=SEED,
                       rows_per_file=ROWS_PER_FILE, name="benchmark",
                       settings={"release": {"decontamination": DECONTAMINATION}}, data_dir=out / "data",
                       card_path=out / "README.md", funnel_path=out / "funnel.json",
                       contamination_out=out / "contamination.jsonl",
                       **({"variants_out": out / "number_variants.jsonl", "drop_variants": False,
                           "screens": list(METHODS[:2]), "model_matches_paths": []} if stage == "merge" else {}))
        return {"released": funnel["released_pairs"], "files": len(funnel["files"])}
    if stage == "datasketch":
        return datasketch_baseline(workdir)
    raise ValueError(f"unknown stage {stage}")


def release_in_memory(*, best_paths, stats_paths, duplicates_path, contamination_paths, benchmarks_path,
                      absent_benchmarks, seed, rows_per_file, name, settings, data_dir, card_path, funnel_path,
                      contamination_out) -> dict:
    """The baseline: the release as it was before it streamed (scalequest/stages/release.py then),
    every best pair in one table: concatenate, drop, sort by id and permute, write the files; the
    funnel, card and contamination.jsonl from that table."""
    loaded = load_stage_stats(stats_paths)
    stages = [stage for stage in SHARD_STAGES if stage in loaded]
    check_chain(loaded, stages)
    merged = pa.concat_tables([read_shard(path, BEST) for path in best_paths])
    last_kept = sum(payload["questions"].kept for payload in loaded[stages[-1]].values())
    if merged.num_rows != last_kept:
        raise StatsError(f"the {stages[-1]} shards hold {merged.num_rows} pairs but their sidecars say {last_kept}")
    summary = json.loads(Path(benchmarks_path).read_text(encoding="utf-8"))
    benchmarks = [benchmark["name"] for benchmark in summary["benchmarks"]]
    matches = pa.concat_tables([read_shard(path, MATCHES) for path in contamination_paths])
    contamination = attribute_contamination(matches, benchmarks, drop_variants=False)
    drop = DropRule(read_duplicates(duplicates_path, merged.num_rows), contamination, drop_variants=False)
    reasons = drop(merged.column("id").to_pylist())
    dropped = Counter({reason: 0 for reason in ["duplicate", "near_duplicate"]
                       + [contamination_reason(benchmark) for benchmark in benchmarks]})
    dropped.update(reason for reason in reasons if reason)
    release_funnel = Funnel(total=len(reasons), kept=sum(reason is None for reason in reasons), dropped=dropped)
    final = merged.filter(pa.array([reason is None for reason in reasons])).sort_by("id")
    final = final.take(np.random.default_rng(seed).permutation(final.num_rows))
    count = max(1, -(-final.num_rows // rows_per_file))
    files = [f"train-{index:05d}-of-{count:05d}.parquet" for index in range(count)]
    with atomic_dir(data_dir) as tmp:
        for index, file in enumerate(files):
            piece = final.slice(index * rows_per_file, rows_per_file).replace_schema_metadata(RELEASE.metadata())
            pq.write_table(piece, tmp / file, compression="zstd")
    matched = Counter(match["benchmark"] for found in contamination.values() for match in found
                      if match["method"] in METHODS)
    by_method = Counter((contamination[row_id][0]["benchmark"], contamination[row_id][0]["method"])
                        for row_id, reason in zip(merged.column("id").to_pylist(), reasons)
                        if reason and reason.startswith("contaminated:"))
    variants = Counter(found[0]["benchmark"] for row_id, found in contamination.items() if row_id in drop.variants)
    funnel = {
        "stages": summarize(loaded, stages) + [{"stage": "release", "questions": release_funnel.to_json()}],
        "released_pairs": final.num_rows, "files": [f"data/{file}" for file in files], "models": models_used(loaded),
        "decontamination": {"ngram": summary.get("ngram"), "absent": dict(absent_benchmarks),
                            "number_variants_dropped": False, "benchmarks": {
            about["name"]: {"source": about["source"], "items": about["items"], "matched": matched[about["name"]],
                            "dropped": dropped[contamination_reason(about["name"])],
                            "dropped_by": {method: by_method[about["name"], method] for method in METHODS[:2]},
                            "number_variants": variants[about["name"]]}
            for about in summary["benchmarks"]}},
        "distributions": release_distributions(final),
    }
    write_json_atomic(funnel_path, funnel)
    rows = [row for row, reason in enumerate(reasons) if reason and reason.startswith("contaminated:")]
    records = sorted(({**picked, "reason": reasons[row], "matches": contamination[picked["id"]]} for row, picked in
                      zip(rows, merged.select(["id", "question"]).take(pa.array(rows, pa.int64())).to_pylist())),
                     key=lambda record: record["id"])
    write_text_atomic(contamination_out, "".join(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
                                                 for record in records))
    write_text_atomic(card_path, render_card(name=name, funnel=funnel, settings=settings,
                                             sample=final.slice(0, 3).to_pylist()))
    return funnel


def datasketch_baseline(workdir: Path) -> dict:
    """The straightforward way: one process, exact dedup with a set, then for every question a
    datasketch MinHash of the same 3-gram shingles, an LSH query and an insert if nothing was found."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=NEAR_DUP["threshold"], num_perm=NEAR_DUP["num_perm"])
    seen, dropped = set(), {"duplicate": [], "near_duplicate": []}
    n = NEAR_DUP["ngram"]
    for path in shards(workdir, "best"):
        table = read_shard(path, BEST)
        for row_id, question in zip(table.column("id").to_pylist(), table.column("question").to_pylist()):
            key = normalize_question(question)
            if key in seen:
                dropped["duplicate"].append(row_id)
                continue
            seen.add(key)
            words = normalize_for_matching(question).split()
            shingles = {" ".join(words[i:i + n]).encode() for i in range(max(1, len(words) - n + 1))}
            minhash = MinHash(num_perm=NEAR_DUP["num_perm"], seed=SEED)
            minhash.update_batch(list(shingles))
            if lsh.query(minhash):
                dropped["near_duplicate"].append(row_id)
            else:
                lsh.insert(row_id, minhash)
    (workdir / "datasketch.json").write_text(json.dumps(dropped))
    return {reason: len(ids) for reason, ids in dropped.items()}


# ---- quality --------------------------------------------------------------------------------

def quality(workdir: Path) -> dict:
    """Precision and recall of the near-duplicate removal against what was planted (copies whose
    shingle set is within the threshold of their original's, exact copies included), and the
    share of planted benchmark questions caught."""
    planted = json.loads((workdir / "planted.json").read_text())
    ids = planted["ids"]
    group = {ids[int(copy)]: ids[original] for copy, original in planted["near_duplicate_of"].items()}
    originals = {ids[original] for original in planted["near_duplicate_of"].values()}
    questions = {}
    for path in shards(workdir, "best"):
        table = read_shard(path, BEST)
        questions.update(zip(table.column("id").to_pylist(), table.column("question").to_pylist()))
    pairs = [(questions[copy], questions[original]) for copy, original in group.items()]
    within = pair_jaccard(ngram_sets([text for pair in pairs for text in pair], NEAR_DUP["ngram"]),
                          np.arange(2 * len(pairs)).reshape(-1, 2)) >= NEAR_DUP["threshold"]
    expected = [copy for copy, keep in zip(group, within) if keep]
    result = {"planted copies within threshold": len(expected),
              "ours": _precision_recall(set(pq.read_table(workdir / "duplicates.parquet").column("id").to_pylist()),
                                        expected, group, originals)}
    if (workdir / "datasketch.json").exists():
        theirs = {row_id for ids in json.loads((workdir / "datasketch.json").read_text()).values() for row_id in ids}
        result["datasketch"] = _precision_recall(theirs, expected, group, originals)
    found = pa.concat_tables([pq.read_table(path) for path in shards(workdir, "decontaminate_lexical")])
    caught = set(found.filter(pc.not_equal(found.column("method"), "number_variant")).column("id").to_pylist())
    benchmark_ids = [ids[int(position)] for position in planted["benchmark_item"]]
    result["benchmark questions caught"] = f"{sum(i in caught for i in benchmark_ids)}/{len(benchmark_ids)}"
    result["other questions flagged"] = len(caught - set(benchmark_ids))
    return result


def _precision_recall(dropped: set, expected: list, group: dict, originals: set) -> dict:
    planted_rows = set(group) | originals
    found = sum(copy in dropped or group[copy] in dropped for copy in expected)
    return {"dropped": len(dropped), "precision": round(len(dropped & planted_rows) / max(1, len(dropped)), 4),
            "recall": round(found / max(1, len(expected)), 4)}


STAGES = ["language", "minhash", "lsh_band", "dedup", "benchmark_index", "decontaminate", "decontaminate_lexical",
          "ngram_real_text", "lexical_real_text", "merge", "merge_in_memory"]
TARGET = ["minhash", "lsh_band", "dedup", "benchmark_index", "decontaminate_lexical"]  # near-dup + decontamination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100_000)
    parser.add_argument("--shard-size", type=int, default=10000)
    parser.add_argument("--response-chars", type=int, default=RESPONSE_CHARS,
                        help="characters of each pair's response, when the set is written (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="default: a new temporary folder; one holding a set is reused")
    parser.add_argument("--only", help="comma-separated stages to measure again (e.g. lsh_band,dedup)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the datasketch baseline")
    parser.add_argument("--memory-limit-gb", type=float, default=12.0, help="kill a stage above this much memory")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.workdir, args.processes), default=int))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scalequest-bench-"))
    if not (workdir / "planted.json").exists():
        started = time.perf_counter()
        write_question_set(workdir, args.questions, args.shard_size, args.response_chars)
        print(f"question set written in {time.perf_counter() - started:.0f} s")
    rows = sum(pq.read_metadata(path).num_rows for path in shards(workdir, "best"))
    response_chars = json.loads((workdir / "planted.json").read_text()).get("response_chars", "~320")
    print(f"{rows} questions with {response_chars}-character responses in {len(shards(workdir, 'best'))} shards in "
          f"{workdir}; {args.processes} worker processes per stage\n"
          f"near_dup {NEAR_DUP}, decontamination ngram {DECONTAMINATION['ngram']}, "
          f"min_overlap {DECONTAMINATION['min_overlap']}\n")
    stages = args.only.split(",") if args.only else STAGES + ([] if args.no_baseline else ["datasketch"])
    if {"ngram_real_text", "lexical_real_text"} & set(stages):
        real_questions(rows, args.shard_size, workdir)  # written before the clock starts
    figures = measure_stages(workdir, stages, args.processes, int(args.memory_limit_gb * 2**30))
    print_summary(figures, args.processes, workdir)
    print("quality (precision against what was planted: near-duplicates among the planted benchmark questions "
          "themselves count as errors):", json.dumps(quality(workdir), indent=1))


def measure_stages(workdir: Path, stages: list[str], processes: int, limit: int) -> dict[str, tuple[float, int]]:
    """{stage: (seconds, peak bytes)}, each stage run in a fresh process; printed as they come."""
    print(f"{'stage':<22}{'seconds':>10}{'peak MB':>10}  result")
    figures = {}
    for stage in stages:
        command = [sys.executable, __file__, "--stage", stage, "--workdir", str(workdir), "--processes", str(processes)]
        started = time.perf_counter()
        try:
            seconds, peak, output = measure(command, limit=limit)
        except MemoryError as error:
            print(f"{stage:<22}  {error}", flush=True)
            continue
        except SystemExit:  # the stage failed (its traceback is above): measure the others
            # e.g. merge_in_memory past 2**31 characters of responses: Arrow's string offsets overflow
            print(f"{stage:<22}  failed after {time.perf_counter() - started:.0f} s", flush=True)
            continue
        figures[stage] = (seconds, peak)
        print(f"{stage:<22}{seconds:>10.1f}{peak / 2**20:>10.0f}  {output.strip()}", flush=True)
    return figures


def rows_of(workdir: Path) -> int:
    return sum(pq.read_metadata(path).num_rows for path in shards(workdir, "best"))


def print_summary(figures: dict[str, tuple[float, int]], processes: int, workdir: Path) -> None:
    if all(stage in figures for stage in TARGET):
        seconds = sum(figures[stage][0] for stage in TARGET)
        peak = max(figures[stage][1] for stage in TARGET)
        print(f"\nnear-dup + decontamination: {seconds:.0f} s, peak {peak / 2**30:.2f} GB "
              f"(target: 2M questions in < 900 s and < 8 GB on 2 cores)")
    if "merge" in figures and "merge_in_memory" in figures:
        (ours, ours_peak), (theirs, theirs_peak) = figures["merge"], figures["merge_in_memory"]
        print(f"merge: streaming {ours:.1f} s, peak {ours_peak / 2**20:.0f} MB; in memory {theirs:.1f} s, peak "
              f"{theirs_peak / 2**20:.0f} MB; streaming/in-memory: time {ours / theirs:.2f}x, peak memory "
              f"{ours_peak / theirs_peak:.2f}x (target at 2M x 2 KB: <= 2 GB and <= 2x the time)")
    for ngram, lexical, text in (("decontaminate", "decontaminate_lexical", "synthetic set"),
                                 ("ngram_real_text", "lexical_real_text", "real questions")):
        if ngram in figures and lexical in figures:
            questions = rows_of(workdir)
            added = figures[lexical][0] - figures[ngram][0]
            print(f"lexical screen on the {text}: n-gram alone {figures[ngram][0]:.1f} s, all screens "
                  f"{figures[lexical][0]:.1f} s for {questions} questions: adds {added:.1f} s, "
                  f"{added * 2_000_000 / questions:.0f} s at 2M ({processes} processes; target < 180 s); "
                  f"peak {figures[lexical][1] / 2**20:.0f} MB")
    ours_stages = ("minhash", "lsh_band", "dedup")
    if "datasketch" in figures and all(stage in figures for stage in ours_stages):
        ours = sum(figures[stage][0] for stage in ours_stages)
        ours_peak = max(figures[stage][1] for stage in ours_stages)
        theirs, theirs_peak = figures["datasketch"]
        print(f"exact + near dup: ours {ours:.0f} s, peak {ours_peak / 2**20:.0f} MB ({processes} workers); "
              f"datasketch {theirs:.0f} s, peak {theirs_peak / 2**20:.0f} MB (1 process); "
              f"datasketch/ours: time {theirs / ours:.1f}x, peak memory {theirs_peak / ours_peak:.2f}x")


if __name__ == "__main__":
    main()
