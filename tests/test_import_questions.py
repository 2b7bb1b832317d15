"""Questions from a JSONL file: strict reading, and the import stage on real GSM8K questions."""
import json

import pytest

from conftest import SHARED_DATA
from scalequest.jsonl import InputFileError, read_questions
from scalequest.records import QUESTIONS, read_shard
from scalequest.stages.import_questions import import_shard
from scalequest.stats import read_stats, stats_path


def write_lines(path, lines):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_reads_a_slice_and_skips_blank_lines(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [json.dumps({"question": f"Q{i}?"}).encode() for i in range(5)]
                       + [b"", b"  "])
    assert list(read_questions(path, "question", 1, 3)) == [(1, "Q1?"), (2, "Q2?")]


@pytest.mark.parametrize("bad_line, message", [
    (b'{"question": "What is 2+2?"', r"q.jsonl:2: not valid JSON"),
    (b'{"question": "caf\xe9?"}', r"q.jsonl:2: byte 0xe9 at column 18 is not valid UTF-8"),
    (b'{"problem": "What?"}', r"q.jsonl:2: no 'question' field \(fields: problem\)"),
    (b'{"question": 7}', r"q.jsonl:2: 'question' is int, expected a string"),
    (b'["What?"]', r"q.jsonl:2: expected a JSON object, got list"),
])
def test_bad_line_is_an_error_naming_file_and_line(tmp_path, bad_line, message):
    path = write_lines(tmp_path / "q.jsonl", [b'{"question": "What is 1+1?"}', bad_line])
    with pytest.raises(InputFileError, match=message):
        list(read_questions(path, "question"))


def test_import_shard_from_gsm8k(tmp_path):
    source = SHARED_DATA / "gsm8k_test.jsonl"
    out = tmp_path / "generate" / "gsm8k" / "00001.parquet"
    stats = import_shard(generator="gsm8k", shard="00001", first_index=100, count=100, questions_file=source,
                         field="question", seed=3, out=out)
    rows = read_shard(out, QUESTIONS).to_pylist()
    assert len(rows) == stats.questions.kept == 100
    assert rows[0]["id"] == "gsm8k-00001-100"
    assert rows[0]["question"] == json.loads(source.read_text().splitlines()[100])["question"].strip()
    assert read_stats(stats_path(out))["questions"].total == 100


def test_import_shard_past_the_end_of_the_file_is_an_error(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [b'{"question": "Q?"}'] * 3)
    with pytest.raises(InputFileError, match="holds 3 questions, but generator 'g' asks for at least 4"):
        import_shard(generator="g", shard="00000", first_index=0, count=4, questions_file=path, field="question",
                     seed=0, out=tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_import_counts_empty_questions(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [b'{"question": "Q?"}', b'{"question": "  "}'])
    stats = import_shard(generator="g", shard="00000", first_index=0, count=2, questions_file=path,
                         field="question", seed=0, out=tmp_path / "o.parquet")
    assert stats.questions.to_json()["dropped"] == {"empty": 1}
