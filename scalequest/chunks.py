"""Checkpointed engine work. A GPU job goes through its shard in chunks of `chunk_size` prompts, and
each finished chunk is written atomically beside the shard's output (`<shard>.chunks/`). A job killed
by its time limit, a node failure or preemption loses only the chunk in flight; its retry loads the
model once, runs the missing chunks, and merges them all into the shard as if nothing had happened.

A chunk records the digests of everything that decides its content (model, sampling, prompts, seed,
the input shard), and one made with other settings is discarded, never mixed in. A chunk starts at
a multiple of the engine's batch size, and a prompt's seed is its index in the shard
(engines/base.py Sampling): the shard is the same whether it was made in one go or in pieces."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .atomic import write_json_atomic, write_text_atomic
from .digests import digest, model_fingerprint
from .engines.base import Completion, Sampling
from .failure_injection import kill_after_chunks_if_asked
from .models import ModelSpec
from .registry import stage as stage_of

CHUNKS_SUFFIX = ".chunks"
ATTEMPTS_FILE = "attempts.json"  # a list of the shard's attempts: times, host, Slurm job, chunks per call, outcome
CHUNK_FILE = re.compile(r"(?P<call>.+)-(?P<start>\d{9})-(?P<stop>\d{9})\.json")  # prompts [start, stop) of a call
HEARTBEAT_SECONDS = 30.0  # how often a running job marks its attempt alive (what status and lost time read)
# SIGTERM: Slurm's preemption, time limit and scancel; SIGUSR1: the profile's warning before the time limit.
INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Interrupted(Exception):
    """The job got a signal to stop: the chunk in flight is abandoned, the finished ones are on disk."""

    def __init__(self, signum: int):
        self.signame = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signame}")


def chunks_dir(out: str | Path) -> Path:
    """The folder of a shard's finished chunks: `x.parquet` → `x.chunks`."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".parquet") + CHUNKS_SUFFIX)


def chunk_step(spec: ModelSpec) -> int:
    """Chunk sizes are multiples of this: the hf engine's batch (its seeds and padding are per batch)."""
    return spec.batch_size if spec.engine == "hf" else 1


class LazyEngine:
    """An engine opened on first use, so that a job whose chunks are all on disk loads no model."""

    def __init__(self, opener: Callable[..., Any], spec: ModelSpec, *args: Any, **kwargs: Any):
        self.spec = spec
        self._open = lambda: opener(spec, *args, **kwargs)
        self._engine = None

    def __call__(self) -> Any:
        if self._engine is None:
            self._engine = self._open()
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> "LazyEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _encode_completion(completion: Completion | None) -> list | None:
    return None if completion is None else [completion.text, completion.tokens, completion.finished]


def _decode_completion(value: list | None) -> Completion | None:
    return None if value is None else Completion(value[0], value[1], value[2])


class ShardChunks:
    """The chunked engine calls of one shard's job, as a with-block: it records the attempt (kept alive by
    a heartbeat), turns SIGTERM/SIGUSR1 into `Interrupted`, and `finish` fills the sidecar's record of
    attempts before the shard is written; the chunks are deleted when the block ends without an error.

    `settings` are the shard's own (its seed, its inputs' digests); each call adds its model, its
    sampling and its prompts. Every call in a job has its own name (`respond`, `rewrite1-<prompt>`, `judge`, ...)."""

    def __init__(self, out: str | Path, *, stage: str, generator: str, shard: str, chunk_size: int,
                 settings: dict[str, Any]):
        unit = stage_of(stage).chunks
        if unit is None:
            raise ValueError(f"stage {stage} does not checkpoint in chunks (scalequest/registry.py)")
        self.dir, self.unit = chunks_dir(out), unit
        self.stage, self.label, self.chunk_size = stage, f"{generator}/{shard}", chunk_size
        self.settings = {name: digest(value) for name, value in settings.items()}
        self.resumed = {"chunks": 0, "seconds": 0.0}
        self.written = 0
        self._lock = threading.RLock()  # the signal handler may update the attempt while the main thread holds it
        self._stop = threading.Event()
        self._attempts: list[dict[str, Any]] = []
        self._previous_handlers: dict[int, Any] = {}
        self._interrupted: Interrupted | None = None

    # --- the attempt -------------------------------------------------------------------------------
    def __enter__(self) -> "ShardChunks":
        self.dir.mkdir(parents=True, exist_ok=True)
        self._attempts = read_attempts(self.dir)
        now = time.time()
        self._attempts.append({"attempt": len(self._attempts) + 1, "started": now, "last_seen": now,
                               "host": socket.gethostname(), "pid": os.getpid(),
                               "slurm_job": os.environ.get("SLURM_JOB_ID"),
                               "chunks_written": 0, "outcome": "running"})
        self._save_attempts()
        for earlier in self._attempts[:-1]:  # a requeued job's earlier log is gone: say what happened to it
            print(f"{self.stage} {self.label}: attempt {earlier['attempt']} on {earlier.get('host')}"
                  f"{', Slurm job ' + earlier['slurm_job'] if earlier.get('slurm_job') else ''}: "
                  f"{earlier.get('chunks_written', 0)} chunk(s) written, {_outcome(earlier)}", flush=True)
        threading.Thread(target=self._heartbeat, daemon=True).start()
        if threading.current_thread() is threading.main_thread():
            for signum in INTERRUPT_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._interrupt)
        return self

    def __exit__(self, kind, error, tb) -> None:
        self._stop.set()
        if self._interrupted is None:  # after an interruption the handlers stay: a second signal must not kill
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
        if kind is None:  # the block wrote the shard and its sidecar: the chunks have done their work
            with self._lock:
                shutil.rmtree(self.dir, ignore_errors=True)
        elif self._interrupted is None and self.dir.exists():
            self._update(outcome=f"failed: {kind.__name__}")

    def _interrupt(self, signum: int, frame: Any) -> None:
        """Record and say the interruption at once (the job may be SIGKILLed seconds later, while the engine
        shuts down), then abandon the chunk in flight; later signals are ignored."""
        if self._interrupted is not None:
            return
        self._interrupted = Interrupted(signum)
        print(f"\n{self.stage} {self.label}: {self._interrupted}; {self.written} chunk(s) written by this attempt "
              f"are on disk in {self.dir}, the chunk in flight is abandoned. Exiting non-zero: the retry resumes.",
              flush=True)
        self._update(outcome=str(self._interrupted))
        raise self._interrupted

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._update()

    def _update(self, **fields: Any) -> None:
        with self._lock:
            self._attempts[-1].update(last_seen=time.time(), **fields)
            self._save_attempts()

    def _save_attempts(self) -> None:
        if self.dir.exists():
            write_json_atomic(self.dir / ATTEMPTS_FILE, self._attempts)

    # --- chunked calls ----------------------------------------------------------------------------
    def generate(self, engine: LazyEngine, prompts: Sequence[str | list[dict[str, str]]], sampling: Sampling, *,
                 call: str) -> list[list[Completion] | None]:
        """`engine().generate` over the prompts, chunk by chunk: each a plain prompt or a conversation
        (rendered with the model's chat template). None where a prompt does not fit the model."""
        def compute(items: Sequence, start: int) -> list:
            rendered = [item if isinstance(item, str) else
                        engine().render_chat(item, add_generation_prompt=True) for item in items]
            return engine().generate(rendered, replace(sampling, seed=sampling.seed + start))

        encode = lambda result: None if result is None else [_encode_completion(c) for c in result]  # noqa: E731
        decode = lambda value: None if value is None else [_decode_completion(c) for c in value]  # noqa: E731
        return self._run(call, prompts, compute, encode, decode, engine=engine, sampling=asdict(sampling),
                         per_item=sampling.n,
                         count=lambda result: 0 if result is None else len(result))

    def chat(self, engine: LazyEngine, conversations: Sequence[list[dict[str, str]]], sampling: Sampling, *,
             call: str) -> list[Completion | None]:
        """`engine().chat` (a local model or an endpoint) over the conversations, chunk by chunk."""
        def compute(items: Sequence, start: int) -> list:
            return engine().chat(items, replace(sampling, seed=sampling.seed + start))

        return self._run(call, conversations, compute, _encode_completion, _decode_completion, engine=engine,
                         sampling=asdict(sampling),
                         count=lambda result: result is not None)

    def score(self, engine: LazyEngine, inputs: Sequence[str | list[dict[str, str]]], *,
              call: str) -> tuple[list[float], int]:
        """Scores of conversations (chat-rendered) or plain texts, chunk by chunk, and how many inputs
        were cut to the model's context."""
        def compute(items: Sequence, start: int) -> list:
            texts = [item if isinstance(item, str) else
                     engine().render_chat(item, add_generation_prompt=False) for item in items]
            scores, truncated = engine().score_texts(texts)
            return [scores, truncated]

        parts = self._run(call, inputs, compute, lambda part: part, lambda part: part, engine=engine, sampling=None,
                          count=lambda part: len(part[0]), whole_chunks=True)
        return [score for part in parts for score in part[0]], sum(part[1] for part in parts)

    def embed(self, engine: LazyEngine, texts: Sequence[str], *, call: str) -> tuple[list[list[float]], int]:
        """Unit vectors of plain texts, chunk by chunk, and how many texts were cut to the model's context."""
        def compute(items: Sequence, start: int) -> list:
            vectors, truncated = engine().embed_texts(items)
            return [vectors, truncated]

        parts = self._run(call, texts, compute, lambda part: part, lambda part: part, engine=engine, sampling=None,
                          count=lambda part: len(part[0]), whole_chunks=True)
        return [vector for part in parts for vector in part[0]], sum(part[1] for part in parts)

    def _run(self, call: str, items: Sequence, compute: Callable[[Sequence, int], list],
             encode: Callable[[Any], Any], decode: Callable[[Any], Any], *, engine: LazyEngine,
             sampling: dict[str, Any] | None, count: Callable[[Any], int], per_item: int = 1,
             whole_chunks: bool = False) -> list:
        """The results of `compute` over `items` (compute(slice, start) → one result per item, or one
        per chunk with `whole_chunks`), from the chunks on disk where they match, computed and written
        where not."""
        step = chunk_step(engine.spec)
        size = -(-max(self.chunk_size, 1) // step) * step
        own = {**self.settings, "model": digest(model_fingerprint(engine.spec)), "sampling": digest(sampling)}
        ranges = [(start, min(start + size, len(items))) for start in range(0, len(items), size)]
        expected = {}
        for start, stop in ranges:
            settings = {**own, "prompts": digest(list(items[start:stop]))}
            expected[self.dir / f"{call}-{start:09d}-{stop:09d}.json"] = settings
        self._update(calls={**self._attempts[-1].get("calls", {}), call: len(ranges)})  # for the status command
        found = self._load(call, expected)
        if found:
            done = sum(payload["count"] for payload in found.values())
            print(f"resuming {self.stage} {self.label}: {len(found)} of {len(ranges)} chunks done "
                  f"({done:,} of {len(items) * per_item:,} {self.unit})", flush=True)
        results: list = []
        for (path, settings), (start, stop) in zip(expected.items(), ranges):
            payload = found.get(path)
            if payload is None:
                began = time.perf_counter()
                computed = compute(items[start:stop], start)
                encoded = [encode(computed)] if whole_chunks else [encode(r) for r in computed]
                payload = {"settings": settings, "start": start, "stop": stop, "seconds":
                           round(time.perf_counter() - began, 3),
                           "count": count(computed) if whole_chunks else sum(count(r) for r in computed),
                           "attempt": self._attempts[-1]["attempt"], "results": encoded}
                _write_chunk(path, payload)
                self.written += 1
                self._update(chunks_written=self.written)
                kill_after_chunks_if_asked(self.stage, self.written, self.dir)
            else:
                self.resumed["chunks"] += 1
                self.resumed["seconds"] += payload["seconds"]
            results.extend(decode(value) for value in payload["results"])
        return results

    def _load(self, call: str, expected: dict[Path, dict[str, str]]) -> dict[Path, dict[str, Any]]:
        """The chunks of `call` on disk that match their settings; the others are removed, and said so."""
        found, stale = {}, {}
        for path in sorted(self.dir.glob(f"{call}-*.json")):
            if not CHUNK_FILE.fullmatch(path.name) or CHUNK_FILE.fullmatch(path.name)["call"] != call:
                continue  # another call whose name starts with this one's
            payload = _read_chunk(path)
            if path not in expected:
                stale[path] = "a chunk size of another run"
            elif payload is None:
                stale[path] = "an unreadable file"
            elif payload["settings"] != expected[path]:
                changed = sorted(k for k in expected[path] if payload["settings"].get(k) != expected[path][k])
                stale[path] = f"other settings ({', '.join(changed)} changed)"
            else:
                found[path] = payload
        for path, why in stale.items():
            print(f"discarding chunk {path.name} of {self.stage} {self.label}: made with {why}; recomputing it",
                  flush=True)
            path.unlink()
        return found

    # --- the end --------------------------------------------------------------------------------------
    def finish(self, stats: Any) -> Any:
        """The shard's stats (returned) with what its attempts took: their number, the chunks this one resumed,
        and the seconds earlier attempts spent on work the shard does not keep (model loads, the chunks in
        flight when they were stopped, chunks made with other settings). Call it just before writing the
        shard, inside the with-block: the chunks are removed when the block ends without an error."""
        earlier = sum(a["last_seen"] - a["started"] for a in self._attempts[:-1])
        stats.earlier_seconds = round(self.resumed["seconds"], 3)
        stats.interruptions = {"attempts": len(self._attempts), "resumed_chunks": self.resumed["chunks"],
                               "lost_seconds": round(max(earlier - self.resumed["seconds"], 0.0), 3)}
        return stats


def _outcome(attempt: dict[str, Any]) -> str:
    """How an earlier attempt ended; one still 'running' was killed without a word (SIGKILL, a lost node)."""
    outcome = attempt.get("outcome", "running")
    return "killed (no word from it after its last heartbeat)" if outcome == "running" else outcome


def _write_chunk(path: Path, payload: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def _read_chunk(path: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) and {"settings", "results", "count"} <= payload.keys() else None


def read_attempts(folder: Path) -> list[dict[str, Any]]:
    """The attempts recorded in a chunk folder (none when it is missing or unreadable)."""
    try:
        attempts = json.loads((folder / ATTEMPTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return attempts if isinstance(attempts, list) else []
