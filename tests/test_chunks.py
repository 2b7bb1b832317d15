"""Checkpointed GPU stages on the tiny model, through the real engines: a shard made in one go, after
SIGKILLs and SIGTERMs at chunk boundaries, or with another chunk size is the same, byte for byte."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalequest.chunks import ATTEMPTS_FILE, chunks_dir
from scalequest.failure_injection import KILL_AFTER_CHUNKS_ENV, KILLED_MARKER
from scalequest.models import ModelSpec
from scalequest.stats import read_stats, stats_path

SAMPLING = {"temperature": 1.0, "top_p": 0.95, "max_tokens": 48}
BATCH = 4  # the hf batch: chunk starts are multiples of it


def tiny_spec(tiny_models: Path, name: str = "tiny-lm", engine: str = "hf") -> ModelSpec:
    return ModelSpec(key=name, path=str(tiny_models / name), engine=engine, dtype="float32", max_model_len=1024,
                     batch_size=BATCH, vllm_args={"enforce_eager": True} if engine == "vllm" else {})


def call(function: str, *, tiny_models: Path, env: dict[str, str] | None = None, background: bool = False,
         **kwargs):
    """Run a stage function (`module:name` in scalequest.stages) in a fresh interpreter, as a job does;
    `model`/`scorer` keyword values are tiny model names (with "@vllm" for the vllm engine)."""
    program = (
        "import json, sys\n"
        "from importlib import import_module\n"
        "from dataclasses import replace\n"
        "from pathlib import Path\n"
        "from scalequest.models import ModelSpec\n"
        "args = json.loads(sys.argv[1])\n"
        "for key in ('model', 'scorer'):\n"
        "    if key in args:\n"
        "        name, _, engine = args[key].partition('@')\n"
        "        args[key] = ModelSpec(key=name, path=str(Path(sys.argv[2]) / name), engine=engine or 'hf',\n"
        "                              dtype='float32', max_model_len=1024, batch_size=int(sys.argv[3]),\n"
        "                              vllm_args={'enforce_eager': True} if engine == 'vllm' else {})\n"
        "module, name = sys.argv[4].split(':')\n"
        "getattr(import_module(f'scalequest.stages.{module}'), name)(**args)\n"
    )
    command = [sys.executable, "-c", program, json.dumps(kwargs), str(tiny_models), str(BATCH), function]
    full_env = {key: value for key, value in os.environ.items() if key != KILL_AFTER_CHUNKS_ENV} | (env or {})
    if background:
        return subprocess.Popen(command, env=full_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(command, env=full_env, text=True, capture_output=True, timeout=600)


def killed_after(chunks: int, stage: str) -> dict[str, str]:
    return {KILL_AFTER_CHUNKS_ENV: f"{stage}:{chunks}"}


def counts(sidecar: Path) -> dict:
    """A sidecar without what depends on how the shard was made: its times and its attempts."""
    payload = json.loads(sidecar.read_text())
    return {key: value for key, value in payload.items() if key not in ("seconds", "interruptions")}


@pytest.fixture(scope="module")
def questions(tmp_path_factory, tiny_models) -> Path:
    """A filter shard of 30 tiny-model questions (language filter only), made whole."""
    folder = tmp_path_factory.mktemp("questions")
    result = call("generate:generate_shard", tiny_models=tiny_models, generator="g", shard="00000", first_index=0,
                  count=30, model="tiny-lm", prompt_style="qwen2-math", sampling=SAMPLING, seed=7, chunk_size=1000,
                  out=str(folder / "generate.parquet"))
    assert result.returncode == 0, result.stderr[-3000:]
    result = call("filter:filter_shard", tiny_models=tiny_models, generator="g", shard="00000",
                  questions_path=str(folder / "generate.parquet"), language="none", judge=None, sampling=SAMPLING,
                  seed=8, chunk_size=1000, out=str(folder / "filter.parquet"))
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "filter.parquet"


def respond(out: Path, questions: Path, tiny_models: Path, *, chunk_size: int, sampling=SAMPLING, model="tiny-lm",
            env=None, background=False):
    return call("respond:respond_shard", tiny_models=tiny_models, env=env, background=background, generator="g",
                shard="00000", questions_path=str(questions), model=model, n=3, sampling=sampling, seed=11,
                chunk_size=chunk_size, out=str(out))


@pytest.fixture(scope="module")
def whole(tmp_path_factory, questions, tiny_models) -> Path:
    """The respond shard made in one go, in one chunk."""
    out = tmp_path_factory.mktemp("whole") / "respond.parquet"
    result = respond(out, questions, tiny_models, chunk_size=1000)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not chunks_dir(out).exists()
    return out


def test_respond_killed_after_two_chunks_resumes_to_the_same_shard(tmp_path, questions, whole, tiny_models):
    out = tmp_path / "respond.parquet"
    killed = respond(out, questions, tiny_models, chunk_size=BATCH, env=killed_after(2, "respond"))
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    assert not out.exists() and len(list(chunks_dir(out).glob("respond-*.json"))) == 2
    resumed = respond(out, questions, tiny_models, chunk_size=BATCH)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_stats(stats_path(questions))["questions"].kept
    chunks = -(-rows // BATCH)
    assert f"resuming respond g/00000: 2 of {chunks} chunks done ({2 * BATCH * 3} of {rows * 3} responses)" \
        in resumed.stdout + resumed.stderr
    assert re.search(r"respond g/00000: attempt 1 on \S+: 2 chunk\(s\) written, killed \(no word from it",
                     resumed.stdout + resumed.stderr)
    assert out.read_bytes() == whole.read_bytes()
    assert counts(stats_path(out)) == counts(stats_path(whole))
    record = json.loads(stats_path(out).read_text())["interruptions"]
    assert record["attempts"] == 2 and record["resumed_chunks"] == 2 and record["lost_seconds"] >= 0
    assert json.loads(stats_path(whole).read_text())["interruptions"] == {"attempts": 1, "resumed_chunks": 0,
                                                                         "lost_seconds": 0.0}
    assert not chunks_dir(out).exists()  # removed once the shard is written


def test_five_interruptions_give_the_same_shard(tmp_path, questions, whole, tiny_models):
    out = tmp_path / "respond.parquet"
    chunks = -(-read_stats(stats_path(questions))["questions"].kept // BATCH)
    interruptions = min(5, chunks - 1)
    for _ in range(interruptions):
        killed = respond(out, questions, tiny_models, chunk_size=BATCH, env=killed_after(1, "respond"))
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        (chunks_dir(out) / KILLED_MARKER).unlink()  # so that the next attempt is killed too
    assert respond(out, questions, tiny_models, chunk_size=BATCH).returncode == 0
    assert out.read_bytes() == whole.read_bytes()
    assert counts(stats_path(out)) == counts(stats_path(whole))
    record = json.loads(stats_path(out).read_text())["interruptions"]
    assert record == {**record, "attempts": interruptions + 1, "resumed_chunks": interruptions}


def test_another_chunk_size_gives_the_same_shard(tmp_path, questions, whole, tiny_models):
    out, chunk_size = tmp_path / "respond.parquet", 5  # rounded up to a multiple of the batch: 8
    killed = respond(out, questions, tiny_models, chunk_size=chunk_size, env=killed_after(1, "respond"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [p.name for p in chunks_dir(out).glob("respond-*.json")] == ["respond-000000000-000000008.json"]
    assert respond(out, questions, tiny_models, chunk_size=chunk_size).returncode == 0
    assert out.read_bytes() == whole.read_bytes()
    assert counts(stats_path(out)) == counts(stats_path(whole))


def test_sigterm_flushes_the_finished_chunks_and_exits_non_zero(tmp_path, questions, whole, tiny_models):
    out = tmp_path / "respond.parquet"
    job = respond(out, questions, tiny_models, chunk_size=BATCH, background=True)
    folder = chunks_dir(out)
    deadline = time.monotonic() + 300
    while not list(folder.glob("respond-*.json")) and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    output, _ = job.communicate(timeout=120)
    assert job.returncode not in (0, -signal.SIGTERM), output[-2000:]  # the handler ran and the job failed
    assert "respond g/00000: interrupted by SIGTERM" in output and "the retry resumes" in output
    attempts = json.loads((folder / ATTEMPTS_FILE).read_text())
    assert attempts[-1]["outcome"] == "interrupted by SIGTERM"
    assert respond(out, questions, tiny_models, chunk_size=BATCH).returncode == 0
    assert out.read_bytes() == whole.read_bytes()


def test_changed_sampling_discards_the_stale_chunks(tmp_path, questions, tiny_models):
    out = tmp_path / "respond.parquet"
    killed = respond(out, questions, tiny_models, chunk_size=BATCH, env=killed_after(2, "respond"))
    assert killed.returncode == -signal.SIGKILL
    other = {**SAMPLING, "temperature": 0.7}
    rerun = respond(out, questions, tiny_models, chunk_size=BATCH, sampling=other)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = rerun.stdout + rerun.stderr
    assert log.count("made with other settings (sampling changed); recomputing it") == 2
    assert "resuming" not in log
    clean = tmp_path / "clean" / "respond.parquet"
    assert respond(clean, questions, tiny_models, chunk_size=1000, sampling=other).returncode == 0
    assert out.read_bytes() == clean.read_bytes()


def test_generate_resumes_to_the_same_shard(tmp_path, tiny_models):
    def generate(out, chunk_size, env=None):
        return call("generate:generate_shard", tiny_models=tiny_models, env=env, generator="g", shard="00003",
                    first_index=30, count=13, model="tiny-lm", prompt_style="deepseek-math", sampling=SAMPLING,
                    seed=5, chunk_size=chunk_size, out=str(out))

    whole, out = tmp_path / "whole.parquet", tmp_path / "resumed.parquet"
    assert generate(whole, 1000).returncode == 0
    assert generate(out, BATCH, env=killed_after(2, "generate")).returncode == -signal.SIGKILL
    resumed = generate(out, BATCH)
    assert "resuming generate g/00003: 2 of 4 chunks done (8 of 13 questions)" in resumed.stdout + resumed.stderr
    assert out.read_bytes() == whole.read_bytes() and counts(stats_path(out)) == counts(stats_path(whole))


def test_reward_resumes_to_the_same_shard(tmp_path, whole, tiny_models):
    def reward(folder, chunk_size, env=None):
        return call("reward:reward_job", tiny_models=tiny_models, env=env, generator="g", shard="00000",
                    responses_path=str(whole), model="tiny-reward", seed=3, chunk_size=chunk_size,
                    rewarded_out=str(folder / "reward.parquet"), best_out=str(folder / "best.parquet"))

    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    assert reward(clean, 1000).returncode == 0
    assert reward(resumed, BATCH, env=killed_after(2, "reward")).returncode == -signal.SIGKILL
    rerun = reward(resumed, BATCH)
    assert rerun.returncode == 0 and "resuming reward g/00000: 2 of" in rerun.stdout + rerun.stderr
    for name in ("reward.parquet", "best.parquet"):
        assert (resumed / name).read_bytes() == (clean / name).read_bytes()
        assert counts(stats_path(resumed / name)) == counts(stats_path(clean / name))


@pytest.mark.vllm
def test_vllm_respond_resumes_to_the_same_shard(tmp_path, questions, tiny_models):
    whole, out = tmp_path / "whole.parquet", tmp_path / "resumed.parquet"
    assert respond(whole, questions, tiny_models, chunk_size=1000, model="tiny-lm@vllm").returncode == 0
    killed = respond(out, questions, tiny_models, chunk_size=6, model="tiny-lm@vllm", env=killed_after(1, "respond"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = respond(out, questions, tiny_models, chunk_size=6, model="tiny-lm@vllm")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming respond g/00000: 1 of" in resumed.stdout + resumed.stderr
    assert out.read_bytes() == whole.read_bytes() and counts(stats_path(out)) == counts(stats_path(whole))
