"""The cost of checkpointing GPU stages in chunks (scalequest/chunks.py): one respond shard and one
reward shard on the tiny models through the hf engine, made whole (one chunk: `chunk_size` = the
shard's size) and with smaller chunk sizes (the default 1000, and a small one), on the same shard.

    .venv/bin/python benchmarks/chunking.py
    .venv/bin/python benchmarks/chunking.py --questions 3000 --batch-size 16 --max-tokens 16 --repeats 3

The questions are the tiny corpus's solvable word problems (scalequest/tiny/corpus.py), written as
a filter shard (what respond reads); the reward shard's input is a respond shard holding each of
those questions with one worked solution of the corpus (what the tiny model was trained to write).
Every run calls the stage function the way a job does (model load, chunks, the shard and its
sidecar), all in this one process, torch on one thread, after an untimed warm-up on a one-batch
shard. The chunk sizes run in turn, a round per repeat, their order rotated every round; a ratio is
the median over the rounds of a run's time over the whole shard's run of the same round. Both wall
and CPU time are measured: on a machine shared with other work, identical runs' wall times differed
by up to 38%, their CPU times (of this single-threaded process) by 5-12%, and chunking's costs
(encoding, writing and removing files) are CPU work, so the goal is judged by CPU time. Just before a job removes its
chunks, the files are measured (their size, and the seconds the engine spent in them); that
bookkeeping is timed and left out of the run's time. The shard must come out the same, byte for
byte, whatever the chunk size: checked.

The models: $SCALEQUEST_TINY_MODELS, or results/tiny/models (`make demo` builds them).
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scalequest.chunks import ATTEMPTS_FILE, ShardChunks, chunk_step  # noqa: E402
from scalequest.models import ModelSpec  # noqa: E402
from scalequest.records import RESPONSES, SOLVABLE, to_table, write_shard  # noqa: E402
from scalequest.shards import question_id  # noqa: E402
from scalequest.stages.respond import respond_shard  # noqa: E402
from scalequest.stages.reward import reward_shard  # noqa: E402
from scalequest.tiny.corpus import make_problems, solution_reply  # noqa: E402

TINY_MODELS = Path(os.environ.get("SCALEQUEST_TINY_MODELS", REPO / "results" / "tiny" / "models"))
DEFAULT_CHUNK = 1000  # the schema's default chunk_size
GOAL = 0.05  # at most 5% more time at the default chunk size than in one chunk
GENERATOR, SHARD, SEED = "bench", "00000", 1234
SAMPLING = {"temperature": 0.7, "top_p": 0.95}  # the tiny preset's respond sampling; max_tokens from --max-tokens


# ---- the inputs -------------------------------------------------------------------------------------

def write_inputs(folder: Path, generator: str, count: int) -> tuple[Path, Path]:
    """A filter shard of `count` tiny-corpus questions, and a respond shard of the same questions with one
    worked solution each."""
    problems = [problem for problem in make_problems(3 * count, SEED) if problem.solvable][:count]
    if len(problems) < count:
        raise SystemExit(f"the tiny corpus gave {len(problems)} solvable questions, not {count}")
    rng = random.Random(SEED)
    base = [{"id": question_id(generator, SHARD, index), "generator": generator, "shard": int(SHARD),
             "question": problem.question, "question_model": "tiny-corpus", "question_seed": SEED,
             "difficulty": None} for index, problem in enumerate(problems)]
    questions = folder / "filter" / generator / f"{SHARD}.parquet"
    write_shard(to_table([{**row, "judge_reply": None, "judge_model": None} for row in base], SOLVABLE), SOLVABLE,
                questions)
    responses = folder / "respond-input" / generator / f"{SHARD}.parquet"
    write_shard(to_table([{**row, "responses": [solution_reply(problem, rng)[0]], "response_model": "tiny-corpus",
                           "response_seed": SEED} for row, problem in zip(base, problems)], RESPONSES),
                RESPONSES, responses)
    return questions, responses


# ---- one run ----------------------------------------------------------------------------------------

class ChunkMeter:
    """Wraps ShardChunks.remove to measure the chunk files a job leaves before they are removed; the
    wall and CPU seconds that takes are kept, to be left out of the run's time."""

    def __init__(self):
        self.last: dict | None = None
        self.wall = self.cpu = 0.0
        self._remove = ShardChunks.remove

    def __enter__(self) -> "ChunkMeter":
        meter = self

        def remove(chunks: ShardChunks) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            files = sorted(path for path in chunks.dir.glob("*.json") if path.name != ATTEMPTS_FILE)
            payloads = [json.loads(path.read_text(encoding="utf-8")) for path in files]
            meter.last = {
                "files": len(files), "bytes": sum(path.stat().st_size for path in files),
                "allocated": sum(path.stat().st_blocks * 512 for path in files),
                "count": sum(payload["count"] for payload in payloads),
                "engine_seconds": sum(payload["seconds"] for payload in payloads),
                "text_bytes": sum(_text_bytes(payload) for payload in payloads),
            }
            meter.wall += time.perf_counter() - wall
            meter.cpu += time.process_time() - cpu
            meter._remove(chunks)

        ShardChunks.remove = remove
        return self

    def __exit__(self, *exc) -> None:
        ShardChunks.remove = self._remove


def _text_bytes(payload: dict) -> int:
    """The UTF-8 bytes of the completions' texts in a generation chunk (0 in a scoring chunk)."""
    return sum(len(completion[0].encode("utf-8")) for result in payload["results"] if isinstance(result, list)
               for completion in result if isinstance(completion, list) and isinstance(completion[0], str))


def run_stage(stage: str, meter: ChunkMeter, source: Path, out: Path, model: ModelSpec, chunk_size: int,
              max_tokens: int) -> dict:
    """One job of `stage` at `chunk_size`: its wall and CPU seconds, its chunk files' figures, its shard's digest."""
    generator = source.parent.name
    gc.collect()
    meter.wall = meter.cpu = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    if stage == "respond":
        respond_shard(generator=generator, shard=SHARD, questions_path=source, model=model, n=1,
                      sampling={**SAMPLING, "max_tokens": max_tokens}, seed=SEED, chunk_size=chunk_size, out=out)
    else:
        reward_shard(generator=generator, shard=SHARD, responses_path=source, model=model, seed=SEED,
                     chunk_size=chunk_size, out=out)
    wall, cpu = time.perf_counter() - wall - meter.wall, time.process_time() - cpu - meter.cpu
    return {"wall": wall, "cpu": cpu, "outside": wall - meter.last["engine_seconds"], "chunks": dict(meter.last),
            "digest": hashlib.sha256(out.read_bytes()).hexdigest()}


# ---- the benchmark ----------------------------------------------------------------------------------

def measure_stage(stage: str, meter: ChunkMeter, folder: Path, source: Path, warmup: Path, model: ModelSpec,
                  sizes: list[int], repeats: int, max_tokens: int) -> list[dict[int, dict]]:
    """The runs of one stage, a round per repeat: {chunk_size: run}, the sizes run in turn, their order
    rotated every round."""
    out = folder / stage / GENERATOR / f"{SHARD}.parquet"
    run_stage(stage, meter, warmup, folder / stage / warmup.parent.name / f"{SHARD}.parquet", model, sizes[0],
              max_tokens)
    rounds = []
    for repeat in range(repeats):
        runs = {}
        for size in sizes[repeat % len(sizes):] + sizes[:repeat % len(sizes)]:
            runs[size] = run = run_stage(stage, meter, source, out, model, size, max_tokens)
            print(f"  {stage} chunk_size {size:>5}: {run['wall']:6.2f} s wall, {run['cpu']:6.2f} s CPU, "
                  f"{run['chunks']['files']} chunk file(s)", flush=True)
        rounds.append(runs)
    return rounds


def print_stage(stage: str, rounds: list[dict[int, dict]], sizes: list[int], step: int) -> dict[int, dict]:
    """The table of one stage; returns {chunk_size: {"wall", "cpu": time ratios to the whole shard, "noise": the
    spread of the whole shard's CPU times, "outside": the overhead outside the engine as a share of the whole
    shard's time}}."""
    whole = sizes[0]

    def median(size: int, key: str) -> float:
        return statistics.median(runs[size][key] for runs in rounds)

    def paired(size: int, key: str) -> float:  # each run against the whole shard's run of its round
        return statistics.median(runs[size][key] / runs[whole][key] for runs in rounds)

    def spread(key: str) -> float:  # how far apart the whole shard's own runs are
        times = [runs[whole][key] for runs in rounds]
        return (max(times) - min(times)) / statistics.median(times)

    print(f"\n{stage}: {whole:,} {'prompts' if stage == 'respond' else 'responses scored'}, chunk sizes rounded up "
          f"to a multiple of the batch ({step}); the whole shard's runs spread over {spread('wall'):.1%} (wall) and "
          f"{spread('cpu'):.1%} (CPU) of their median")
    print(f"{'chunk_size':>10} {'(rounded)':>9} {'chunks':>6} {'wall s, by round':>20} {'median':>7} {'ratio':>7} "
          f"{'CPU s':>6} {'ratio':>7} {'outside engine s':>16} {'its overhead':>12}")
    ratios = {}
    for size in sizes:
        ratios[size] = {"wall": paired(size, "wall"), "cpu": paired(size, "cpu"), "noise": spread("cpu"),
                        "outside": (median(size, "outside") - median(whole, "outside")) / median(whole, "wall")}
        label = "whole" if size == whole else str(-(-size // step) * step)
        by_round = " ".join(f"{runs[size]['wall']:.2f}" for runs in rounds)
        print(f"{size:>10} {label:>9} {rounds[-1][size]['chunks']['files']:>6} {by_round:>20} "
              f"{median(size, 'wall'):>7.2f} {ratios[size]['wall']:>6.3f}x {median(size, 'cpu'):>6.2f} "
              f"{ratios[size]['cpu']:>6.3f}x {median(size, 'outside'):>16.3f} {ratios[size]['outside']:>+12.2%}")
    digests = {runs[size]["digest"] for runs in rounds for size in sizes}
    print(f"shards identical whatever the chunk size: {'yes' if len(digests) == 1 else 'NO'} "
          f"({len(digests)} distinct digest(s))")
    return ratios


def print_chunk_files(stage: str, rounds: list[dict[int, dict]], sizes: list[int]) -> None:
    print(f"{stage} chunk files on disk (the last round's, just before their removal):")
    for size in sizes:
        chunks = rounds[-1][size]["chunks"]
        per = 1000 / max(chunks["count"], 1)
        text = "" if not chunks["text_bytes"] else (
            f", of which response text {chunks['text_bytes'] * per / 1000:,.1f} KB "
            f"({chunks['text_bytes'] / max(chunks['count'], 1):.0f} bytes a response)")
        print(f"  chunk_size {size:>5}: {chunks['files']:>3} files, {chunks['bytes']:>10,} bytes "
              f"({chunks['allocated']:,} allocated) for {chunks['count']:,} responses: "
              f"{chunks['bytes'] * per / 1000:,.1f} KB per 1000 responses ({chunks['allocated'] * per / 1000:,.1f} KB "
              f"allocated){text}")


def verdict(figure: dict) -> str:
    """Whether the CPU time ratio meets the goal, or misses it by less than the whole shard's own runs differ."""
    if figure["cpu"] <= 1 + GOAL:
        return "holds"
    if figure["cpu"] - 1 <= figure["noise"]:
        return (f"not resolved: above the goal by less than the whole shard's own CPU times differ "
                f"({figure['noise']:.1%})")
    return "DOES NOT HOLD"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=3000, help="rows of the shard (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="the models' hf batch_size (default %(default)s)")
    parser.add_argument("--max-tokens", type=int, default=16, help="respond's max_tokens (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default %(default)s: on a shared 2-core machine two threads make "
                             "times swing 2-3x)")
    parser.add_argument("--chunk-sizes", default=None,
                        help="comma-separated chunk sizes besides the whole shard (default: 1000 and 2x the batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", default="respond,reward")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed at the end")
    args = parser.parse_args()
    for name in ("tiny-lm", "tiny-reward"):
        if not (TINY_MODELS / name / "config.json").exists():
            raise SystemExit(f"no {TINY_MODELS / name}: run `make demo`, or set SCALEQUEST_TINY_MODELS")
    models = {stage: ModelSpec(key=name, path=str(TINY_MODELS / name), engine="hf", dtype="float32",
                               max_model_len=1024, batch_size=args.batch_size)
              for stage, name in (("respond", "tiny-lm"), ("reward", "tiny-reward"))}
    step = chunk_step(models["respond"])
    sizes = [args.questions] + ([int(size) for size in args.chunk_sizes.split(",")] if args.chunk_sizes
                                else [DEFAULT_CHUNK, 2 * args.batch_size])
    with tempfile.TemporaryDirectory(prefix="scalequest-chunking-") as temporary:
        folder = args.workdir or Path(temporary)
        started = time.perf_counter()
        sources = dict(zip(("respond", "reward"), write_inputs(folder, GENERATOR, args.questions)))
        warmups = dict(zip(("respond", "reward"), write_inputs(folder, "warmup", args.batch_size)))
        import torch

        torch.set_num_threads(args.threads)
        print(f"{args.questions:,} questions, hf engine on {'GPU' if torch.cuda.is_available() else 'CPU'} "
              f"({torch.get_num_threads()} threads), batch_size {args.batch_size}, respond n=1, "
              f"max_tokens {args.max_tokens}, sampling {SAMPLING}; {args.repeats} repeats; models in {TINY_MODELS}")
        results = {}
        with ChunkMeter() as meter:
            for stage in args.stages.split(","):
                results[stage] = measure_stage(stage, meter, folder, sources[stage], warmups[stage], models[stage],
                                               sizes, args.repeats, args.max_tokens)
        ratios = {stage: print_stage(stage, rounds, sizes, step) for stage, rounds in results.items()}
        print("ratio: the median, over the rounds, of the run's time over the whole shard's run in the same round; "
              "outside engine: the median run's wall time less the seconds its chunks spent in the engine (model "
              "load, input, chunk files, the shard, the checks); its overhead: how much more that is than the whole "
              "shard's, as a share of the whole shard's wall time\n")
        for stage, rounds in results.items():
            print_chunk_files(stage, rounds, sizes)
        if DEFAULT_CHUNK in sizes:
            print(f"\ngoal: under {GOAL:.0%} overhead at the default chunk size ({DEFAULT_CHUNK}):")
            for stage, ratio in ratios.items():
                figure = ratio[DEFAULT_CHUNK]
                print(f"  {stage}: CPU time {figure['cpu']:.3f}x, wall time {figure['wall']:.3f}x, outside the engine "
                      f"{figure['outside']:+.2%}: {verdict(figure)}")
        print(f"benchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
