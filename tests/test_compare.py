"""genlib compare from saved `dvc exp show --json`: a failed and a running experiment
(expshow.json), and a sweep of 2 methods x 2 epoch counts x 2 seeds (expshow_seeds.json, from a
real sweep, with w1_exact set to round numbers so that the aggregates can be checked by hand)."""
import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from genlib.cli import main
from genlib.compare import Experiment, compare, differing_params, parse_exp_show
from genlib.compare.directions import best
from genlib.compare.failures import reason
from genlib.compare.groups import distinct_runs, series
from genlib.compare.tables import summary_table

FIXTURE = Path(__file__).parent / "fixtures" / "expshow.json"
SEEDS = Path(__file__).parent / "fixtures" / "expshow_seeds.json"


def rows_with_running():
    rows = json.loads(FIXTURE.read_text())
    running = copy.deepcopy(rows[1]["experiments"][0])
    running["name"] = "still-going"
    running["executor"] = {"state": "running"}
    running["revs"][0].update(name="still-going", data={}, error=None)
    rows[1]["experiments"].append(running)
    return rows


def sweep():
    return [e for e in parse_exp_show(json.loads(SEEDS.read_text())) if not e.problem]


def test_parse_marks_failed_and_running():
    exps = {e.name: e for e in parse_exp_show(rows_with_running())}
    assert set(exps) == {"master", "good10", "bad500", "still-going"}
    assert exps["bad500"].problem.startswith("failed") and not exps["bad500"].metrics
    assert exps["still-going"].problem == "running"
    assert exps["good10"].params["eval.reverse_steps"] == 10 and "w1_exact" in exps["good10"].metrics
    assert "train_time_s" in exps["good10"].metrics  # metrics/train.json joins eval.json
    assert exps["master"].baseline and not exps["good10"].baseline


def test_differing_params_only():
    exps = [e for e in parse_exp_show(rows_with_running()) if not e.problem]
    assert differing_params(exps) == ["eval.reverse_steps"]


def test_seeds_aggregate_into_one_row_per_configuration():
    exps = sweep()
    varying = differing_params(exps)
    assert varying == ["method", "seed", "training.epochs"]
    runs = distinct_runs(exps)
    assert len(exps) == 9 and len(runs) == 8  # the baseline repeats the dlpm, 20-epoch, seed-0 cell
    table, groups = summary_table(runs, varying, ["w1_exact"])
    stats = {g.label: g.stat("w1_exact") for g in groups}
    assert approx_stats(stats) == {
        "method=dlpm, training.epochs=20": (0.14, 0.12, 0.16, 2),
        "method=ddpm, training.epochs=5": (0.4, 0.3, 0.5, 2),
        "method=ddpm, training.epochs=20": (0.15, 0.1, 0.2, 2),
        "method=dlpm, training.epochs=5": (0.75, 0.6, 0.9, 2),
    }
    cells = {tuple(c.text for c in row[:3]): row[-1] for row in table.rows}
    assert cells[("ddpm", "5", "2")].text == "0.4 [0.3, 0.5]"
    assert cells[("dlpm", "20", "2")].best and not cells[("ddpm", "20", "2")].best  # w1_exact: lower is better


def approx_stats(stats):
    return {k: (round(s.mean, 9), s.lo, s.hi, s.n) for k, s in stats.items()}


def test_a_run_without_a_finite_value_is_counted_out():
    exps = [Experiment(f"e{i}", f"r{i}", {"seed": i}, {"w1_exact": w}) for i, w in enumerate([0.2, float("nan"), 0.4])]
    table, _ = summary_table(exps, differing_params(exps), ["w1_exact"])
    assert [c.text for c in table.rows[0]] == ["all experiments", "3", "", "0.3 [0.2, 0.4] (n=2)"]


def test_series_against_epochs_one_line_per_method_with_seed_bars():
    exps = distinct_runs(sweep())
    lines = series(exps, differing_params(exps), "training.epochs", "w1_exact")
    got = {k: [(p.x, round(p.stat.mean, 9), p.stat.lo, p.stat.hi, p.stat.n) for p in v] for k, v in lines.items()}
    assert got == {
        "method=dlpm": [(5.0, 0.75, 0.6, 0.9, 2), (20.0, 0.14, 0.12, 0.16, 2)],
        "method=ddpm": [(5.0, 0.4, 0.3, 0.5, 2), (20.0, 0.15, 0.1, 0.2, 2)],
    }


def test_series_keep_apart_runs_that_differ_in_another_param():
    """Two DDPM trainings (5 and 100 epochs) are two lines against the reverse steps, not one zig-zag."""
    exps = [
        Experiment(f"e{i}", f"r{i}", {"method": "ddpm", "training.epochs": ep, "eval.reverse_steps": steps, "seed": seed},
                   {"w1_exact": w})
        for i, (ep, steps, seed, w) in enumerate([
            (5, 10, 0, 0.5), (5, 10, 1, 0.7), (5, 50, 0, 0.4), (100, 10, 0, 0.2), (100, 50, 0, 0.1), (100, 50, 1, 0.3),
        ])
    ]
    lines = series(exps, differing_params(exps), "eval.reverse_steps", "w1_exact")
    got = {k: [(p.x, round(p.stat.mean, 9), p.stat.n) for p in v] for k, v in lines.items()}
    assert got == {
        "training.epochs=5": [(10.0, 0.6, 2), (50.0, 0.4, 1)],
        "training.epochs=100": [(10.0, 0.2, 1), (50.0, 0.2, 2)],
    }


def test_alpha_axis_reads_each_methods_own_alpha():
    exps = [
        Experiment("a", "r1", {"method": "dlpm", "dlpm.alpha": 1.5, "lim.alpha": 1.8}, {"w1_exact": 0.3}),
        Experiment("b", "r2", {"method": "dlpm", "dlpm.alpha": 1.9, "lim.alpha": 1.8}, {"w1_exact": 0.2}),
        Experiment("c", "r3", {"method": "lim", "dlpm.alpha": 1.9, "lim.alpha": 1.7}, {"w1_exact": 0.4}),
        Experiment("d", "r4", {"method": "ddpm", "dlpm.alpha": 1.9, "lim.alpha": 1.7}, {"w1_exact": 0.1}),
    ]
    got = {k: [(p.x, p.stat.mean) for p in v] for k, v in series(exps, differing_params(exps), "alpha", "w1_exact").items()}
    assert got == {"method=dlpm": [(1.5, 0.3), (1.9, 0.2)], "method=lim": [(1.7, 0.4)]}


def test_another_methods_section_does_not_split_a_configuration():
    """lim.alpha differs between the DDPM runs only by accident of the workspace: it is not theirs."""
    exps = [
        Experiment("a", "r1", {"method": "ddpm", "lim.alpha": 1.8, "seed": 0}, {"w1_exact": 0.3}),
        Experiment("b", "r2", {"method": "ddpm", "lim.alpha": 1.5, "seed": 1}, {"w1_exact": 0.5}),
        Experiment("c", "r3", {"method": "lim", "lim.alpha": 1.5, "seed": 0}, {"w1_exact": 0.4}),
    ]
    _, groups = summary_table(exps, differing_params(exps), ["w1_exact"])
    assert [(g.label, len(g.exps)) for g in groups] == [("method=ddpm", 2), ("method=lim, lim.alpha=1.5", 1)]


def test_best_follows_each_metrics_direction():
    assert best("w1_exact", [0.3, 0.1, None]) == {1}
    assert best("precision", [0.3, 0.9]) == {1}
    assert best("mmd", [-0.01, 0.02]) == {0}  # nearest 0
    assert best("mode_ratio_worst", [0.5, 1.9, 0.0]) == {1}  # nearest 1 in log scale: 1.9 beats 0.5
    assert best("final_loss", [0.3, 0.1]) == set()  # losses of different methods: no direction
    assert best("recall", [1.0, 1.0]) == set()  # a tie of everything marks nothing


def test_failure_reason_is_the_stage_error_line():
    log = "Running stage 'config':\n> python stages/config.py\nerror: params: eval.sampler = 'x' is not allowed\nERROR: failed to reproduce 'config'\n"
    assert reason(log) == "params: eval.sampler = 'x' is not allowed"
    assert reason("ERROR: failed to reproduce 'train': exited with 1\n") == "failed to reproduce 'train': exited with 1"
    assert reason("all fine\n") is None


def test_failed_queued_run_shows_its_logged_error(tmp_path):
    rows = json.loads(SEEDS.read_text())
    failed = next(e for c in rows for e in c.get("experiments") or [] if (e.get("executor") or {}).get("state") == "failed")
    log = tmp_path / "task.out"
    log.write_text("Running stage 'config':\nerror: params: eval.sampler = 'odee' is not allowed; expected 'default' or one of lim, ode\n"
                   "ERROR: failed to reproduce 'config': failed to run: python stages/config.py, exited with 2\n")
    failed["executor"]["local"]["log"] = str(log)
    lines = compare(parse_exp_show(rows), tmp_path / "out", repo=tmp_path)
    assert f"- {failed['name']}: failed: params: eval.sampler = 'odee' is not allowed; expected 'default' or one of lim, ode" in lines


def test_report_files_and_tables(tmp_path):
    lines = compare(parse_exp_show(json.loads(SEEDS.read_text())), tmp_path)
    md = (tmp_path / "compare.md").read_text()
    assert "| method | training.epochs | n | sampler | w1_exact ↓ |" in md
    assert re.search(r"\| dlpm \| 20 \| 2 \| default \| \*\*0\.14 \[0\.12, 0\.16\]\*\* \|", md)
    assert "![Metrics against training.epochs](metrics_vs_training_epochs.png)" in md
    assert (tmp_path / "metrics_vs_training_epochs.png").stat().st_size > 10_000
    assert "Training curves and samples come from the DVC cache" in md  # a saved JSON has no files
    html = (tmp_path / "compare.html").read_text()
    assert html.count('<table class="sortable">') == 2 and '<div class="scroll">' in html
    assert "data:image/png;base64," in html and "://" not in html  # offline
    # The HTML tables hold every metric, the headline ones first; the Markdown ones the headline.
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", html).group(1)
    names = re.findall(r">([^<>]+)</th>", header)
    assert names.index("w1_exact ↓") < names.index("sampling_time_s ↓") < names.index("coverage ↑") < names.index("train_steps")
    assert "coverage" not in lines[0]
    assert lines[0].startswith("| method | training.epochs | n | sampler |")


def test_cli_prints_markdown(tmp_path, capsys):
    saved = tmp_path / "exps.json"
    saved.write_text(json.dumps(rows_with_running()))
    main(["compare", "--json", str(saved), "--out", str(tmp_path / "out"), "--metrics", "w1_exact,tail_error"])
    out = capsys.readouterr().out
    assert "| eval.reverse_steps | n | sampler | w1_exact ↓ | tail_error ↓ |" in out
    assert "| experiment | eval.reverse_steps | sampler | w1_exact ↓ | tail_error ↓ |" in out
    assert "Without metrics:" in out and "- bad500: failed: Experiment run failed" in out and "- still-going: running" in out


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    ('{"rev": "x"}', "not the output of `dvc exp show --json`"),
    ('[{"rev": "x", "experiments": 3}]', "experiments is a int, expected a list"),
])
def test_bad_input_is_one_line(tmp_path, capsys, content, message):
    saved = tmp_path / "exps.json"
    saved.write_text(content)
    with pytest.raises(SystemExit) as stop:
        main(["compare", "--json", str(saved), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and message in err and err.startswith("error: compare: ")


def test_missing_file_and_no_experiments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--json", str(tmp_path / "nope.json")])
    assert capsys.readouterr().err == f"error: compare: cannot read {tmp_path / 'nope.json'} (No such file or directory)\n"
    rows = json.loads(FIXTURE.read_text())
    for row in rows:
        row["experiments"] = None  # the commit alone: nothing to compare it with
    rows[0]["data"] = rows[1]["data"]  # the workspace holds the commit's results
    only_baseline = tmp_path / "one.json"
    only_baseline.write_text(json.dumps(rows))
    with pytest.raises(SystemExit):
        main(["compare", "--json", str(only_baseline), "--out", str(tmp_path / "out")])
    assert "no experiments yet: run some with `dvc exp run" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a headless chromium")
def test_html_tables_sort_on_a_click_in_a_browser(tmp_path):
    """The inline script, run by a real browser: a click on a metric header sorts the rows by
    that metric's number (not as text: 0.9 before 10), a second click reverses them."""
    compare(parse_exp_show(json.loads(SEEDS.read_text())), tmp_path)
    probe = """<script>
    var t = document.querySelectorAll("table.sortable")[1];
    var th = Array.from(t.querySelectorAll("th")).find(function (h) { return h.textContent.startsWith("w1_exact"); });
    var names = function () { return Array.from(t.tBodies[0].rows).map(function (r) { return r.cells[0].textContent; }).join(","); };
    th.click(); document.body.setAttribute("data-asc", names());
    th.click(); document.body.setAttribute("data-desc", names());
    </script></body>"""
    page = tmp_path / "probe.html"
    page.write_text((tmp_path / "compare.html").read_text().replace("</body>", probe))
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    asc = re.search(r'data-asc="([^"]*)"', dom).group(1).split(",")
    desc = re.search(r'data-desc="([^"]*)"', dom).group(1).split(",")
    w1 = {e.name: e.metrics["w1_exact"] for e in sweep()}
    assert [w1[n] for n in asc] == sorted(w1[n] for n in asc) and len(asc) == 9
    assert desc == asc[::-1] or [w1[n] for n in desc] == sorted(w1.values(), reverse=True)


def test_sample_grid_draws_points_images_and_a_runs_own_figure(tmp_path):
    """Each kind of panel (2D points over data, a tile of uint8 images, the run's samples.png, or
    nothing readable) gets its place on the grid; points outside the data's frame are counted."""
    import matplotlib.pyplot as plt
    import numpy as np

    from genlib.compare.figures import sample_grid

    rng = np.random.default_rng(0)
    png = tmp_path / "own.png"
    plt.imsave(png, rng.random((8, 8)))
    panels = [
        ("points", rng.normal(size=(500, 2)) * 5, rng.normal(size=(500, 2)), None),
        ("images", rng.integers(0, 255, size=(20, 1, 8, 8), dtype=np.uint8), None, None),
        ("own figure", None, None, png.read_bytes()),
        ("nothing", None, None, None),
    ]
    sample_grid(tmp_path / "grid.png", panels, shared=False)
    grid = plt.imread(tmp_path / "grid.png")
    assert grid.shape[1] > 2 * grid.shape[0]  # one row of four panels


def test_unknown_metric_and_unwritable_folder_are_one_line(tmp_path, capsys):
    saved = tmp_path / "exps.json"
    saved.write_text(SEEDS.read_text())
    with pytest.raises(SystemExit):
        main(["compare", "--json", str(saved), "--out", str(tmp_path / "out"), "--metrics", "w1_exact,fidd"])
    err = capsys.readouterr().err
    assert err.startswith("error: compare: --metrics: no experiment has fidd; they have ") and err.count("\n") == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit):
        main(["compare", "--json", str(saved), "--out", str(blocker / "out")])
    assert capsys.readouterr().err.startswith(f"error: compare: cannot write the report in {blocker / 'out'} (")


def test_swept_params_each_get_a_figure(tmp_path):
    """Reverse steps, each method's alpha (one axis) and epochs are plotted against; the seed and
    a param with one value are not."""
    from genlib.compare.comparison import x_axes

    exps = [
        Experiment(f"e{i}", f"r{i}", {"method": m, "dlpm.alpha": a, "lim.alpha": a, "eval.reverse_steps": s,
                                      "training.epochs": ep, "seed": i % 2, "eval.eta": 0.0}, {"w1_exact": 0.1 * i})
        for i, (m, a, s, ep) in enumerate([("dlpm", 1.5, 10, 5), ("dlpm", 1.9, 20, 5), ("lim", 1.7, 10, 20), ("lim", 1.8, 20, 20)])
    ]
    assert x_axes(exps, differing_params(exps)) == ["eval.reverse_steps", "alpha", "training.epochs"]


def test_the_workspace_is_listed_when_its_results_are_in_no_other_row():
    # A fresh clone after `dvc repro` on another CPU: the commit's results are not in the cache
    # (no metrics), the workspace has this machine's run of the same params. The default lists
    # it; a workspace equal to an experiment (results applied after `dvc exp run`) is not listed.
    rows = json.loads(FIXTURE.read_text())
    head = rows[1]
    rows[0]["data"] = json.loads(json.dumps(head["data"]))  # the same params, run here
    rows[0]["data"]["metrics"]["metrics/eval.json"]["data"]["w1_exact"] += 1e-7  # on another CPU
    for entry in head["data"]["metrics"].values():
        entry["data"] = {}  # not in this clone's cache
    names = [e.name for e in parse_exp_show(rows)]
    assert names[0] == "workspace" and "workspace" not in names[1:]
    first_exp = next(r for exp in rows[1]["experiments"] for r in exp["revs"])
    rows[0]["data"]["metrics"] = first_exp["data"]["metrics"]
    assert "workspace" not in [e.name for e in parse_exp_show(rows)]
    assert "workspace" in [e.name for e in parse_exp_show(rows, include_workspace=True)]
