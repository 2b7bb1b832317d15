"""Shard schemas, stats sidecars and atomic writes."""
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalequest.atomic import atomic_dir, atomic_path, write_text_atomic
from scalequest.records import (
    BEST,
    QUESTIONS,
    SOLVABLE,
    ShardFormatError,
    read_columns,
    read_shard,
    to_table,
    write_shard,
)
from scalequest.stages.shard_io import write_stage_outputs
from scalequest.stats import Funnel, ShardStats, StatsError, read_stats, stats_path


def question_row(index=0, **extra):
    return {"id": f"g-00000-{index}", "generator": "g", "shard": 0, "question": f"What is {index} + 1?",
            "question_model": "m", "question_seed": 7, "difficulty": None, **extra}


def test_shard_round_trip_is_self_describing(tmp_path):
    path = tmp_path / "q.parquet"
    write_shard(to_table([question_row(gen_tokens=5)], QUESTIONS), QUESTIONS, path)
    table = read_shard(path, QUESTIONS)
    assert table.to_pylist()[0]["gen_tokens"] == 5
    assert pq.read_schema(path).metadata[b"scalequest.stage"] == b"generate"


def test_reading_a_shard_of_another_stage_names_the_file(tmp_path):
    path = tmp_path / "q.parquet"
    write_shard(to_table([question_row(gen_tokens=5)], QUESTIONS), QUESTIONS, path)
    with pytest.raises(ShardFormatError, match=f"{path}: holds stage 'generate', expected 'filter'"):
        read_shard(path, SOLVABLE)


def test_a_shard_copied_over_another_is_refused_naming_the_file(tmp_path):
    own, copy = tmp_path / "g" / "00000.parquet", tmp_path / "g" / "00001.parquet"
    write_shard(to_table([question_row(i, gen_tokens=5) for i in range(3)], QUESTIONS), QUESTIONS, own)
    shutil.copy(own, copy)
    assert read_shard(own, QUESTIONS).num_rows == 3
    message = rf"{copy}: holds rows of generator g, shard 0 \(e.g. id g-00000-0\), not of g/00001.*Delete it"
    with pytest.raises(ShardFormatError, match=message):
        read_shard(copy, QUESTIONS)
    with pytest.raises(ShardFormatError, match=message):
        read_columns(copy, "generate", ["question"])
    repeated = tmp_path / "g" / "00002.parquet"
    rows = [question_row(0, gen_tokens=5, shard=2, id="g-00002-0") for _ in range(2)]
    write_shard(to_table(rows, QUESTIONS), QUESTIONS, repeated)
    with pytest.raises(ShardFormatError, match="some ids appear in more than one row"):
        read_shard(repeated, QUESTIONS)


def test_corrupt_shard_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(ShardFormatError, match="broken.parquet: not a readable Parquet shard"):
        read_shard(path, QUESTIONS)


def test_rows_missing_a_column_are_rejected():
    with pytest.raises(ShardFormatError, match="'generate' schema"):
        to_table([{"id": "x"}], QUESTIONS)


def test_write_refuses_a_foreign_schema(tmp_path):
    table = pa.table({"id": ["x"]})
    with pytest.raises(ShardFormatError, match="do not match the 'best' schema"):
        write_shard(table, BEST, tmp_path / "b.parquet")
    assert not (tmp_path / "b.parquet").exists()


def test_funnel_conservation_is_checked_on_read(tmp_path):
    path = tmp_path / "s.stats.json"
    path.write_text(json.dumps({"stage": "filter", "questions": {"unit": "question", "in": 10, "kept": 7,
                                                                  "dropped": {"unsolvable": 2}}}))
    with pytest.raises(StatsError, match=r"in \(10\) != kept \(7\) \+ dropped \(2\)"):
        read_stats(path)


def test_stage_outputs_write_shard_then_sidecar(tmp_path):
    out = tmp_path / "f" / "00000.parquet"
    stats = ShardStats("generate", "g", "00000", 1, {})
    stats.questions.keep()
    stats.questions.drop("empty", 2)
    write_stage_outputs([question_row(gen_tokens=3)], QUESTIONS, out, stats)
    payload = read_stats(stats_path(out))
    assert payload["questions"].to_json() == {"unit": "question", "in": 3, "kept": 1, "dropped": {"empty": 2}}


def test_stage_outputs_refuse_rows_that_disagree_with_stats(tmp_path):
    out = tmp_path / "00000.parquet"
    stats = ShardStats("generate", "g", "00000", 1, {})
    with pytest.raises(AssertionError, match="1 rows but the stats say 0 kept"):
        write_stage_outputs([question_row(gen_tokens=3)], QUESTIONS, out, stats)
    assert not out.exists() and not stats_path(out).exists()


def test_failed_block_leaves_no_file(tmp_path):
    final = tmp_path / "x.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_never_leaves_a_final_file(tmp_path):
    """A process killed (SIGKILL) in the middle of writing leaves at most a hidden temp file."""
    final = tmp_path / "shard.parquet"
    script = textwrap.dedent(f"""
        import os, signal
        from scalequest.atomic import atomic_path
        with atomic_path({str(final)!r}) as tmp:
            tmp.write_bytes(b"x" * 100000)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script])
    assert result.returncode == -signal.SIGKILL
    assert not final.exists()
    assert all(p.name.startswith(".shard.parquet.") for p in tmp_path.iterdir())
    # The job's next try removes what the killed one left, and says so in its log.
    (tmp_path / ".model.abc123.tmp").mkdir()
    (tmp_path / ".other.parquet.x.tmp").touch()  # not this job's
    log = tmp_path / "job.log"
    rerun = "from scalequest.joblog import job_log\n" \
            f"with job_log({str(log)!r}, 'generate', [{str(final)!r}, {str(tmp_path / 'model')!r}]): pass"
    subprocess.run([sys.executable, "-c", rerun], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.parquet.x.tmp", "job.log"]
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and all(line.endswith(", left by an interrupted try of this job") for line in lines[1:])


def test_funnel_counts():
    funnel = Funnel()
    funnel.keep(3)
    funnel.drop("a")
    funnel.drop("b", 2)
    assert funnel.to_json() == {"unit": "question", "in": 6, "kept": 3, "dropped": {"a": 1, "b": 2}}


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775),
                                                        (0o077, 0o600, 0o700)])
def test_atomic_writes_take_the_modes_of_the_umask(tmp_path, umask, file_mode, dir_mode):
    """As a plain open() and mkdir() would: teammates read a release written under umask 0022."""
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "data") as tmp:
            (tmp / "part.txt").write_text("y")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "data" / "part.txt").stat().st_mode) == file_mode


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_file_system_names_the_file_being_written(tmp_path, code):
    final = tmp_path / "release" / "funnel.json"
    with pytest.raises(OSError) as raised:
        with atomic_path(final):
            raise OSError(code, "Error writing bytes to file")  # as pyarrow says it: no path
    message = str(raised.value)
    assert raised.value.errno == code and str(final) in message and "GiB free on its file system" in message
    assert "set `results` to a larger file system" in message
    with pytest.raises(OSError, match="data"):
        with atomic_dir(tmp_path / "data"):
            raise OSError(code, "No space left on device")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["release"] and not final.exists()
