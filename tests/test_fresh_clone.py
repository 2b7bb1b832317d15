"""The README's first command on a fresh clone, with no ../shared and no network beyond PyPI."""
import json

from scalequest.tiny.benchmark import HELDOUT_QUESTIONS


def test_make_demo_on_a_fresh_clone_runs_from_the_repository_alone(fresh_clone_demo):
    output = fresh_clone_demo.stdout + fresh_clone_demo.stderr
    assert fresh_clone_demo.returncode == 0, output[-6000:]
    for line in ("Dataset: results/tiny/release/data", "Card:    results/tiny/release/README.md",
                 "Report:  results/tiny/report.html"):
        assert line in output
    clone = fresh_clone_demo.args
    assert not (clone.parent / "shared").exists() and (clone / "results/tiny/report.html").is_file()
    funnel = json.loads((clone / "results/tiny/release/funnel.json").read_text())
    assert funnel["released_pairs"] > 0
    release = funnel["stages"][-1]
    assert release["stage"] == "release" and release["questions"]["dropped"]["contaminated:tiny"] >= 1
    assert funnel["decontamination"]["benchmarks"]["tiny"]["source"].startswith("results/tiny/tiny-benchmark/")
    card = (clone / "results/tiny/release/README.md").read_text()
    assert f"| tiny | results/tiny/tiny-benchmark/heldout.jsonl (question) | {HELDOUT_QUESTIONS} |" in card
