"""The README's first command on a fresh clone, with no ../shared and no network beyond PyPI."""
import json
import stat

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
    # Made under umask 0022 (tests/demo_runs.py): teammates can read the release, as any file of the user's.
    folder = clone / "results/tiny/release"
    modes = {path.relative_to(clone): stat.S_IMODE(path.stat().st_mode) for path in [folder, *folder.rglob("*")]}
    assert {path: mode for path, mode in modes.items() if mode != (0o755 if (clone / path).is_dir() else 0o644)} == {}
