"""genlib compare from a saved `dvc exp show --json` (with a failed and a running experiment)."""
import copy
import json
from pathlib import Path

from genlib.cli import main
from genlib.compare import compare, differing_params, parse_exp_show

FIXTURE = Path(__file__).parent / "fixtures" / "expshow.json"


def rows_with_running():
    rows = json.loads(FIXTURE.read_text())
    running = copy.deepcopy(rows[1]["experiments"][0])
    running["name"] = "still-going"
    running["executor"] = {"state": "running"}
    running["revs"][0].update(name="still-going", data={}, error=None)
    rows[1]["experiments"].append(running)
    return rows


def test_parse_marks_failed_and_running():
    exps = {e.name: e for e in parse_exp_show(rows_with_running())}
    assert set(exps) == {"master", "good10", "bad500", "still-going"}
    assert exps["bad500"].problem.startswith("failed") and not exps["bad500"].metrics
    assert exps["still-going"].problem == "running"
    assert exps["good10"].params["eval.reverse_steps"] == 10 and "w1_exact" in exps["good10"].metrics
    assert "train_time_s" in exps["good10"].metrics  # metrics/train.json joins eval.json


def test_differing_params_only():
    exps = [e for e in parse_exp_show(rows_with_running()) if not e.problem]
    assert differing_params(exps) == ["eval.reverse_steps"]


def test_report_files_and_table(tmp_path):
    lines = compare(parse_exp_show(rows_with_running()), tmp_path)
    assert lines[0].startswith("| experiment | eval.reverse_steps | w1_exact")
    assert any(line.startswith("| good10 | 10 |") for line in lines)
    assert "- bad500: failed: Experiment run failed" in lines and "- still-going: running" in lines
    md = (tmp_path / "compare.md").read_text()
    assert "![Metrics against reverse steps](metrics_vs_reverse_steps.png)" in md
    assert (tmp_path / "metrics_vs_reverse_steps.png").stat().st_size > 10_000
    assert "data:image/png;base64," in (tmp_path / "compare.html").read_text()


def test_cli_prints_markdown(tmp_path, capsys):
    saved = tmp_path / "exps.json"
    saved.write_text(json.dumps(rows_with_running()))
    main(["compare", "--json", str(saved), "--out", str(tmp_path / "out"), "--metrics", "w1_exact,tail_error"])
    out = capsys.readouterr().out
    assert "| experiment | eval.reverse_steps | w1_exact | tail_error |" in out
    assert "Without metrics:" in out and "bad500" in out


def test_alpha_axis_reads_each_methods_own_alpha():
    from genlib.compare import Experiment, series_by

    exps = [
        Experiment("a", "r1", {"method": "dlpm", "dlpm.alpha": 1.5, "lim.alpha": 1.8}, {"w1_exact": 0.3}),
        Experiment("b", "r2", {"method": "dlpm", "dlpm.alpha": 1.9, "lim.alpha": 1.8}, {"w1_exact": 0.2}),
        Experiment("c", "r3", {"method": "lim", "dlpm.alpha": 1.9, "lim.alpha": 1.7}, {"w1_exact": 0.4}),
        Experiment("d", "r4", {"method": "ddpm", "dlpm.alpha": 1.9, "lim.alpha": 1.7}, {"w1_exact": 0.1}),
    ]
    series = series_by(exps, "alpha", "w1_exact")
    assert series == {"dlpm (default)": ([1.5, 1.9], [0.3, 0.2]), "lim (default)": ([1.7], [0.4])}
