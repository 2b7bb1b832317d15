"""The scalequest-decontaminate command as a user types it: against local benchmark files, offline,
without Snakemake; its matches are the workflow screen's for the same questions."""
import json
import subprocess
import tracemalloc

import pytest
import yaml
from test_decontam import FIELDS, SETTINGS, benchmark_entries, probe_questions, read_field
from test_neardup import write_best_shards

from conftest import REPO, SHARED_DATA, user_env
from scalequest.contamination import build_benchmark_items
from scalequest.decontaminate_cli import SCORES, main
from scalequest.jsonl import MAX_LINE_BYTES, InputFileError, read_question_lines
from scalequest.stages.decontaminate import decontaminate_shard


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """config.yaml with the five test sets as local files (what an offline user writes)."""
    path = tmp_path_factory.mktemp("config") / "benchmarks.yaml"
    path.write_text(yaml.safe_dump({"release": {"decontamination": {"benchmarks": benchmark_entries()}}}))
    return [str(REPO / "config.yaml"), str(path)]


def command(*args, cwd=REPO):
    return subprocess.run(["scalequest-decontaminate", *args], cwd=cwd, env=user_env(HF_HUB_OFFLINE="1"), text=True,
                          capture_output=True, timeout=300)


def test_the_command_finds_what_the_screen_job_finds(config, tmp_path):
    _, probes = probe_questions()
    gsm8k = read_field(f"{FIELDS['gsm8k'][0]}.jsonl", "question")
    questions = probes + gsm8k[:50]  # rephrasings, clean questions and verbatim copies
    path = tmp_path / "mine.jsonl"
    # A blank line and other fields: lines are the file's own numbers.
    path.write_text("".join(json.dumps({"q": question, "n": i}) + "\n" + ("\n" if i == 3 else "")
                            for i, question in enumerate(questions)), encoding="utf-8")
    out = tmp_path / "matches.jsonl"
    result = command(str(path), "--config", *config, "--field", "q", "--out", str(out))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    dropped = {record["line"] for record in records if record["dropped"]}
    assert f"{path}: {len(questions)} questions; {len(dropped)} contaminated" in result.stdout
    assert "gsm8k" in result.stdout and "lexical" in result.stdout
    # The workflow's screen job on the same questions, as one best shard.
    (best,), ids = write_best_shards(tmp_path / "job", questions, [0.5] * len(questions), shards=1)
    benchmarks, _ = build_benchmark_items(benchmark_entries(), SETTINGS.ngram)
    table = decontaminate_shard(best_path=best, benchmarks=benchmarks, settings=SETTINGS, out=tmp_path / "m.parquet")
    line_of = {row_id: i + 1 + (i > 3) for i, row_id in enumerate(ids)}
    expected = [{"line": line_of[row["id"]], "benchmark": row["benchmark"], "item": row["item"],
                 "benchmark_question": row["benchmark_question"], "method": row["method"],
                 "scores": {name: row[name] for name in SCORES if row[name] is not None},
                 "dropped": row["method"] != "number_variant"} for row in table.to_pylist()]
    def key(record):
        return json.dumps(record, sort_keys=True)

    assert sorted(records, key=key) == sorted(expected, key=key)
    assert {record["method"] for record in records} == {"ngram", "lexical", "number_variant"}
    assert len([line for line in dropped if line > len(probes) + 1]) == 50  # every verbatim copy


def test_matches_go_to_standard_output_without_out(config, tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"question": read_field("gsm8k_test.jsonl", "question")[7]}) + "\n")
    result = command(str(path), "--config", *config)
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["line"], record["benchmark"], record["item"], record["method"]) == (1, "gsm8k", 7, "ngram")
    assert f"{path}: 1 questions; 1 contaminated" in result.stderr


@pytest.mark.parametrize("content, message", [
    ('{"question": "What is 1+1?"}\n{"question": "What is 2+2?"\n', r"bad.jsonl:2: not valid JSON"),
    ('{"question": "What is 1+1?"}\n\n{"problem": "x"}\n', r"bad.jsonl:3: no 'question' field"),
])
def test_bad_input_names_file_and_line(config, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    result = command(str(path), "--config", *config)
    assert result.returncode == 2 and message in result.stderr and not result.stdout


def test_bad_config_and_missing_benchmark_are_clear_errors(config, tmp_path):
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({"release": {"decontamination": {"benchmarks": {
        "gsm8k": {"path": str(tmp_path / "nope.jsonl"), "field": "question"}}}}}))
    (tmp_path / "q.jsonl").write_text('{"question": "What is 1+1?"}\n')
    result = command(str(tmp_path / "q.jsonl"), "--config", *config, str(missing))
    assert result.returncode == 2 and "release.decontamination.benchmarks.gsm8k.path:" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("release: {decontamination: {lexical: {min_joint: 2}}}\n")
    result = command(str(tmp_path / "q.jsonl"), "--config", str(REPO / "config.yaml"), str(bad))
    assert result.returncode == 2 and "release.decontamination.lexical.min_joint" in result.stderr


def test_help_shows_the_usage():
    result = command("--help")
    assert result.returncode == 0
    assert "usage: scalequest-decontaminate [-h] --config CONFIG [CONFIG ...]" in result.stdout
    assert "QUESTIONS.jsonl" in result.stdout and "--field" in result.stdout and "--out" in result.stdout


def test_offline_with_local_files_only(config, tmp_path):
    """No hub and no Snakemake: the command's process never imports snakemake or datasets."""
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "What is 1+1?"}\n')
    code = ("import sys; from scalequest.decontaminate_cli import main; rc = main(sys.argv[1:]); "
            "assert 'snakemake' not in sys.modules and 'datasets' not in sys.modules, sorted(sys.modules); "
            "sys.exit(rc)")
    result = subprocess.run([user_env()["PATH"].split(":")[0] + "/python", "-c", code, str(path), "--config", *config],
                            env=user_env(HF_HUB_OFFLINE="1"), text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert SHARED_DATA.exists()


def over_the_cap(line):
    """A JSONL line of MAX_LINE_BYTES + 16 bytes (`line` at 1-based line `line`)."""
    return '{"question": "What is 1+1?"}\n' * (line - 1) + json.dumps({"question": "x" * MAX_LINE_BYTES}) + "\n"


BAD_COMMAND_INPUTS = [  # (questions file, an added benchmark's file, --out: a text, a folder or none, message parts)
    pytest.param("folder", None, None, ["{questions}: a folder, not a file"], id="questions: a folder"),
    pytest.param(over_the_cap(2), None, None,
                 [f"{{questions}}:2: a line of {MAX_LINE_BYTES + 16:,} bytes, over the cap of {MAX_LINE_BYTES:,}"],
                 id="questions: a line over the cap"),
    pytest.param("", "", None, ["release.decontamination.benchmarks.mine: {benchmark} (question) holds no questions",
                                "remove mine from release.decontamination.benchmarks"], id="benchmark: empty"),
    pytest.param("", "folder", None, ["release.decontamination.benchmarks.mine.path: {benchmark} is a folder"],
                 id="benchmark: a folder"),
    pytest.param("", over_the_cap(1), None,
                 [f"release.decontamination.benchmarks.mine: {{benchmark}}:1: a line of {MAX_LINE_BYTES + 16:,}"],
                 id="benchmark: a line over the cap"),
    pytest.param("", None, "folder", ["--out {out}: a folder; give the path of the file to write"],
                 id="out: a folder"),
    pytest.param("", None, "{questions}/matches.jsonl", ["--out {out}: {questions} is a file, not a folder"],
                 id="out: in a file"),
]


@pytest.mark.parametrize("questions, benchmark, out, parts", BAD_COMMAND_INPUTS)
def test_bad_command_input_is_one_line_naming_it(config, tmp_path, capsys, questions, benchmark, out, parts):
    """Exit status 2, no traceback and nothing on standard output (main in-process: what the command runs)."""
    paths = {"questions": tmp_path / "q.jsonl", "benchmark": tmp_path / "mine.jsonl", "out": tmp_path / "out"}
    for name, content in (("questions", questions), ("benchmark", benchmark), ("out", out)):
        if content == "folder":
            paths[name].mkdir()
        elif content is not None and name != "out":
            paths[name].write_text(content.replace("{questions}", "What is 1+1?") or "", encoding="utf-8")
    if out not in (None, "folder"):
        paths["out"] = out.format(**paths)
    argv = [str(paths["questions"]), "--config", *config]
    if benchmark is not None:
        argv.append(str(tmp_path / "mine.yaml"))
        (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"release": {"decontamination": {"benchmarks": {
            "mine": {"path": str(paths["benchmark"]), "field": "question"}}}}}))
    if out is not None:
        argv += ["--out", str(paths["out"])]
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's error
        status = stop.code
    output = capsys.readouterr()
    assert status == 2 and not output.out
    assert all(part.format(**paths) in output.err for part in parts), output.err


def test_a_line_over_the_cap_is_never_held_whole(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(over_the_cap(1).replace("x", "xxxx"), encoding="utf-8")  # 4 times the cap
    tracemalloc.start()
    try:
        with pytest.raises(InputFileError, match=f"a line of {4 * MAX_LINE_BYTES + 16:,} bytes"):
            list(read_question_lines(path, "question"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_LINE_BYTES  # readline's buffer and its copy of the cap's bytes, not the line
