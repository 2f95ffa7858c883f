"""bench/load_helper.py: the results table's targets, and `pool` (several load.sh runs read
together)."""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import load_helper  # noqa: E402


def run_dir(base, name, rounds, measured="service binary aaa\noptions: --audit"):
    """A load.sh output directory whose rounds.tsv holds `rounds`: (server, mode, round, rps)."""
    run = base / name
    run.mkdir()
    (run / "rounds.tsv").write_text(
        "".join(
            f"Validate\t{server}\t{mode}\t{number}\t{rps}\t0.000\t{run}/x.log\t0\t20.0\n"
            for server, mode, number, rps in rounds
        )
    )
    (run / "x.log").write_text("")
    if measured is not None:
        (run / "measured").write_text(measured + "\n")
    return run


def saturation(pairs):
    """Rounds of the service and the bare server at saturation, one (service, bare) pair each."""
    return [
        (server, "saturation", number, rps)
        for number, (service, bare) in enumerate(pairs, 1)
        for server, rps in (("service", service), ("bare", bare))
    ]


def test_the_pooled_figure_is_the_median_of_all_round_pairs(tmp_path, capsys):
    first = run_dir(tmp_path, "a", saturation([(80, 100), (90, 100), (70, 100)]))
    second = run_dir(tmp_path, "b", saturation([(85, 100), (170, 200)]))
    assert load_helper.pool(first, second) is None
    out = capsys.readouterr().out
    # Pairs 80%, 90%, 70%, 85%, 85%: median 85%. Each run's own figure is its median service
    # rate over its median bare rate, as load.sh's table gives it.
    assert "Validate at saturation: 85.0% of the bare server's requests/s" in out
    assert "5 round pairs in 2 runs, whose own figures were 80.0%, 85.0%" in out


def test_other_modes_and_unpaired_rounds_are_left_out(tmp_path, capsys):
    rounds = saturation([(90, 100)]) + [
        ("service", "saturation", 2, 10),  # its bare round is missing (a disturbed round)
        ("service", "5000 req/s", 1, 5000),
        ("bare", "5000 req/s", 1, 5000),
        ("http2", "saturation", 1, 10),
    ]
    assert load_helper.pool(run_dir(tmp_path, "a", rounds)) is None
    out = capsys.readouterr().out
    assert "90.0% of the bare server's requests/s (95% interval 90.0% to 90.0%)" in out
    assert "1 round pairs in 1 runs" in out


def test_runs_of_other_binaries_or_options_are_read_apart(tmp_path, capsys):
    audited = run_dir(tmp_path, "a", saturation([(80, 100)]))
    plain = run_dir(tmp_path, "b", saturation([(90, 100)]), measured="service binary aaa\noptions: none")
    old = run_dir(tmp_path, "c", saturation([(70, 100)]), measured=None)
    assert load_helper.pool(audited, plain, old) is None
    out = capsys.readouterr().out
    assert out.index("options: --audit") < out.index("80.0%") < out.index("options: none")
    assert out.index("options: none") < out.index("90.0%") < out.index("(not recorded)")
    assert out.index("(not recorded)") < out.index("70.0%")
    assert out.count("round pairs in 1 runs") == 3


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    assert "not the output directory of a load.sh run" in load_helper.pool(tmp_path)
    empty = run_dir(tmp_path, "a", [("service", "5000 req/s", 1, 5000)])
    assert load_helper.pool(empty) == "pool: no saturation rounds of both servers in these runs"


def test_the_interval_holds_the_median_and_narrows_with_more_pairs():
    spread = [0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.00]
    low, high = load_helper.median_interval(spread)
    assert low < statistics.median(spread) < high
    many_low, many_high = load_helper.median_interval(spread * 10)
    assert low <= many_low < many_high <= high
    assert many_high - many_low < high - low
    assert load_helper.median_interval(spread) == (low, high), "seeded: the same every time"


def test_the_table_holds_an_audited_run_to_the_audit_trails_target(tmp_path, capsys):
    rounds = saturation([(86, 100)])
    audited = run_dir(tmp_path, "a", rounds)
    plain = run_dir(tmp_path, "b", rounds, measured="service binary aaa\noptions: none")
    load_helper.table(audited / "rounds.tsv")
    assert "86.0% of the bare server's requests/s (target: with the audit trail, at least 85%): met" in (
        capsys.readouterr().out
    )
    load_helper.table(plain / "rounds.tsv")
    assert "86.0% of the bare server's requests/s (target: at least 90%): NOT met" in (
        capsys.readouterr().out
    )
