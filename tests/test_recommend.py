"""The recommendation: pure scoring on fabricated result sets whose answer is known, and its errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import real_data_dir
from eegbench import recommend as R
from eegbench.errors import ForeignVersionError, MissingResultsError, OptionError, StaleResultsError
from eegbench.recommend import Config, ResultRow, check_fresh, parse_weights, recommend
from eegbench.results_table import read_csv, write_csv

CONFIGS = ["hdf5 none 0.5s", "zarr blosc-zstd 2s", "parquet blosc-lz4 0.5s", "parquet none 2s"]

# a plausible figure per metric (lower-better metrics: smaller is better)
BASE = {"warm": 0.5, "cold": 3.0, "loader": 1000.0, "seq_warm": 500.0, "seq_cold": 300.0, "save": 1.0,
        "open": 2.0, "size": 400e6, "files": 20.0, "window_bytes": 0.5, "ratio": 3.0}


def _rows(figures: dict[str, dict[str, float]], *, machine="m1", commit="c" * 40, date="2026-01-01T00:00:00Z",
          version="1", code_hash="abc") -> list[ResultRow]:
    """Rows the way the benchmarks name them, from {config: {metric: value}}."""
    rows = []

    def add(bench, params, value):
        rows.append(ResultRow(bench, params, value, math.nan, "", machine, commit, date, "quick", version, code_hash))

    for store, f in figures.items():
        f = {**BASE, **f}
        add(R.RANDOM, (store, "warm"), f["warm"])
        add(R.RANDOM, (store, "cold"), f["cold"])
        add(R.LOADER, (store, "0"), f["loader"])
        add(R.LOADER, (store, "2"), f["loader"] / 2)
        add(R.SEQUENTIAL, (store, "warm"), f["seq_warm"])
        add(R.SEQUENTIAL, (store, "cold"), f["seq_cold"])
        add(R.SAVE, (store,), f["save"])
        add(R.OPEN, (store,), f["open"])
        add(R.SIZE, (store,), f["size"])
        add(R.RATIO, (store,), f["ratio"])
        add(R.FILES, (store,), f["files"])
        add(R.COLD_BYTES, (store,), f["window_bytes"])
    return rows


def _better(factor: float) -> dict[str, float]:
    """Figures ``factor`` times better than BASE on every metric."""
    higher = {"loader", "seq_warm", "seq_cold", "ratio"}
    return {k: v * factor if k in higher else v / factor for k, v in BASE.items()}


def test_dominating_configuration_wins_every_workload():
    figures = {c: {} for c in CONFIGS}
    figures["zarr blosc-zstd 2s"] = _better(1.5)
    rec = recommend(_rows(figures))
    assert set(rec.workloads) == {"training", "preprocessing", "archive", "sharing"}
    for res in rec.workloads.values():
        assert res.winner.config == Config("zarr", "blosc-zstd", 2.0)
        assert res.winner.score == pytest.approx(1.0)
        assert res.ranking[1].score == pytest.approx(1.5)  # 1.5x worse on every weighted figure
        assert res.decided_by and all(r.in_favour for r in res.decided_by)
    assert rec.machine == "m1" and rec.commit == "c" * 40 and rec.profile == "quick"
    assert rec.workloads["training"].winner.config.save_kwargs() == {
        "format": "zarr", "compression": "blosc-zstd", "chunk_seconds": 2.0}


def test_weights_change_the_winner():
    # A: fast cold reads, big; B: small, slow cold reads; otherwise equal
    figures = {"hdf5 none 0.5s": {"cold": 1.0, "size": 800e6}, "zarr zstd 2s": {"cold": 4.0, "size": 200e6}}
    rows = _rows(figures)
    default = recommend(rows, workloads=["custom"], weights={"cold": 1, "size": 1})
    # equal weights: factors 4 (cold) vs 4 (size) -> a tie broken by name; tilt it each way
    cold_heavy = recommend(rows, workloads=["custom"], weights="cold=2,size=1")
    size_heavy = recommend(rows, workloads=["custom"], weights="cold=1,size=2")
    assert cold_heavy.workloads["custom"].winner.config.name == "hdf5 none 0.5s"
    assert size_heavy.workloads["custom"].winner.config.name == "zarr zstd 2s"
    assert default.workloads["custom"].winner.score == pytest.approx(2.0)  # sqrt(4 * 1)
    # an override of a named workload keeps its other weights
    training = recommend(rows, workloads=["training"], weights="cold=3")
    assert dict(training.workloads["training"].weights) == {"warm": 1.0, "cold": 3.0, "loader": 1.0}
    assert training.workloads["training"].winner.config.name == "hdf5 none 0.5s"
    reason = training.workloads["training"].decided_by[0]
    assert reason.metric == "cold" and reason.winner_value == 1.0 and reason.runner_up_value == 4.0


def test_archive_requires_checksummed_reads_unless_weighted_off():
    figures = {"parquet none 2s": {"size": 100e6}, "hdf5 zstd 2s": {"size": 300e6}}
    rec = recommend(_rows(figures), workloads=["archive"])
    assert rec.workloads["archive"].winner.config.name == "hdf5 zstd 2s"
    assert rec.workloads["archive"].ranking[-1].excluded
    rec = recommend(_rows(figures), workloads=["archive"], weights="integrity=0")
    assert rec.workloads["archive"].winner.config.name == "parquet none 2s"


def test_unmeasured_figures_are_na_not_zero():
    figures = {c: {} for c in CONFIGS}
    rows = [r if r.benchmark != R.LOADER else ResultRow(**{**r.__dict__, "median": math.nan})
            for r in _rows(figures)]
    rec = recommend(rows, workloads=["training"])
    res = rec.workloads["training"]
    assert any("not measured" in n for n in res.notes)
    assert "loader" not in {r.metric for r in res.decided_by}
    assert all(math.isnan(r.figures["loader"]) for r in res.ranking)
    assert "n/a" in R.render_markdown(rec)
    # one configuration lacks a figure the others have: ranked after the complete ones
    rows = [r if not (r.benchmark == R.RANDOM and r.params == ("zarr blosc-zstd 2s", "cold"))
            else ResultRow(**{**r.__dict__, "median": math.nan}) for r in _rows({**figures, "zarr blosc-zstd 2s":
                                                                                  _better(2)})]
    res = recommend(rows, workloads=["training"]).workloads["training"]
    assert res.ranking[-1].config.name == "zarr blosc-zstd 2s" and res.ranking[-1].missing == ("cold",)


def test_missing_results_errors():
    with pytest.raises(MissingResultsError, match="make bench"):
        recommend([])
    rows = [r for r in _rows({c: {} for c in CONFIGS}) if r.benchmark != R.LOADER]
    with pytest.raises(MissingResultsError, match="DataLoader.*loader=0"):
        recommend(rows, workloads=["training"])
    assert recommend(rows, workloads=["training"], weights="loader=0").workloads["training"].winner
    baselines_only = [ResultRow(R.SIZE, ("memmap-npy",), 1.0, machine="m", commit="c")]
    with pytest.raises(MissingResultsError, match="no store configuration"):
        recommend(baselines_only, workloads=["custom"], weights="size=1")
    with pytest.raises(MissingResultsError, match="machine 'nope'"):
        recommend(_rows({"hdf5 none 1s": {}}), machine="nope")


def test_foreign_benchmark_version_is_an_error():
    rows = _rows({c: {} for c in CONFIGS}, version="1")
    expected = {R.RANDOM: "2"}
    with pytest.raises(ForeignVersionError, match="version 1.*version 2.*rerun"):
        recommend(rows, expected_versions=expected)
    # a benchmark the chosen workloads do not use does not matter
    assert recommend(rows, workloads=["archive"], expected_versions=expected)


def test_stale_results_say_how_far_behind_and_what_to_rerun():
    rec = recommend(_rows({c: {} for c in CONFIGS}, code_hash="aaa"))
    check_fresh(rec, "aaa")  # same readers: fine
    with pytest.raises(StaleResultsError, match="3 commits since then changed the readers.*formats/zarr.py.*"
                                                "make bench-reference"):
        check_fresh(rec, "bbb", commits_behind=3, changed=["eegbench/formats/zarr.py"], rerun="make bench-reference")
    unknown = recommend(_rows({c: {} for c in CONFIGS}, code_hash=""))
    with pytest.raises(StaleResultsError, match="no hash"):
        check_fresh(unknown, "bbb")


def test_newest_run_of_the_machine_is_used():
    old = _rows({"hdf5 none 1s": {}, "zarr zstd 1s": _better(2)}, commit="a" * 40, date="2026-01-01T00:00:00Z")
    new = _rows({"hdf5 none 1s": _better(2), "zarr zstd 1s": {}}, commit="b" * 40, date="2026-02-01T00:00:00Z")
    other = _rows({"hdf5 none 1s": {}}, machine="m2", date="2025-01-01T00:00:00Z")
    rec = recommend(old + new + other)
    assert rec.commit == "b" * 40 and rec.machine == "m1"
    assert rec.workloads["training"].winner.config.name == "hdf5 none 1s"
    assert recommend(old + new + other, machine="m2").machine == "m2"


def test_parse_weights_and_configs():
    assert parse_weights("cold=2, size=1") == {"cold": 2.0, "size": 1.0}
    for bad in ("colder=1", "cold=x", "cold=-1", "cold"):
        with pytest.raises(OptionError):
            parse_weights(bad)
    with pytest.raises(OptionError, match="custom"):
        recommend(_rows({"hdf5 none 1s": {}}), workloads=["custom"])
    with pytest.raises(OptionError, match="unknown workload"):
        recommend(_rows({"hdf5 none 1s": {}}), workloads=["gaming"])
    c = Config.parse("'zarr zstd 0.5s delta int'")
    assert c.save_kwargs() == {"format": "zarr", "compression": "zstd", "chunk_seconds": 0.5, "delta": True,
                               "integer": True}
    assert c.name == "zarr zstd 0.5s delta int"
    assert Config.parse("memmap-npy") is None and Config.parse("mne-fif") is None


def test_rendering_states_provenance_and_units():
    rec = recommend(_rows({c: {} for c in CONFIGS}), source="fabricated")
    md = R.render_markdown(rec)
    assert "Machine **m1**, commit `cccccccccc`, profile **quick**" in md and "Units:" in md
    assert md.count("eegbench.save(ds, path, format=") == 4
    text = R.render_text(rec)
    assert text.startswith("machine m1, commit cccccccccc, profile quick") and "winner:" in text


def test_csv_round_trip(tmp_path):
    rows = _rows({c: {} for c in CONFIGS})
    rows.append(ResultRow(R.LOADER, ("hdf5 none 0.5s", "5"), math.nan, math.nan, "windows/s", "m1", "c" * 40,
                          "2026-01-01T00:00:00Z", "quick", "1", "abc"))
    text = write_csv(rows, tmp_path / "t.csv")
    back = read_csv(tmp_path / "t.csv")
    assert write_csv(back) == text and len(back) == len(rows)
    assert sum(math.isnan(r.median) for r in back) == 1


def _real_profile_ratios() -> dict[tuple[str, str], float]:
    """(format, codec) -> ratio of integer storage in results/compression-real.md (the real profile)."""
    out = {}
    text = (Path(__file__).resolve().parents[1] / "results" / "compression-real.md").read_text()
    header: list[str] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if "ratio vs float32" in cells:  # columns by name: the table gained a "chunk s" column
            header = cells
            continue
        if not header or len(cells) != len(header):
            continue
        row = dict(zip(header, cells))
        if row["stored as"] == "int16" and "+" not in row["codec"] and row.get("chunk s", "1") == "1":
            codec = row["codec"].rsplit("-", 1)[0] if row["codec"][-1].isdigit() else row["codec"]
            out[(row["format"], codec)] = float(row["ratio vs float32"])
    return out


def test_data_measures_ratios_that_agree_with_the_real_profile(tmp_path):
    """`recommend --data` on a seeded 4 x 60 s sample of EEGBCI: ratio per codec within 5 % of the
    full real-profile figures, and a ranked answer from those measurements."""
    from eegbench.recommend_data import measure

    root = real_data_dir() / "eegbci_S001"
    rows = measure([root], formats=["zarr", "parquet"], codecs=["blosc-zstd", "gzip"], chunk_seconds=(1.0,),
                   n_windows=5, workdir=tmp_path, progress=False)
    expected = _real_profile_ratios()
    ratios = {r.params[0]: r.median for r in rows if r.benchmark == R.RATIO}
    assert len(ratios) == 4
    for name, ratio in ratios.items():
        fmt, codec, _ = name.split()
        assert ratio == pytest.approx(expected[(fmt, codec)], rel=0.05), name
    rec = recommend(rows)
    assert rec.profile == "data" and set(rec.workloads) == set(R.WORKLOADS)
    assert all(not math.isnan(r.figures["cold"]) and r.figures["warm"] > 0 for r in rec.workloads["training"].ranking)
    assert list(tmp_path.iterdir()) == []  # the sample stores are removed


def test_cli_ranks_a_results_table_and_reports_typed_errors(tmp_path, capsys):
    from eegbench.cli import main

    figures = {c: {} for c in CONFIGS}
    figures["zarr blosc-zstd 2s"] = _better(1.5)
    write_csv(_rows(figures, code_hash=""), tmp_path / "r.csv")
    # results without a reader hash are stale for the staleness check ...
    assert main(["recommend", "--results", str(tmp_path / "r.csv")]) == 1
    assert "no hash of the reader sources" in capsys.readouterr().err
    # ... unless the user accepts them
    assert main(["recommend", "--results", str(tmp_path / "r.csv"), "--allow-stale", "-w", "training",
                 "--weights", "cold=2", "--markdown", str(tmp_path / "r.md")]) == 0
    out = capsys.readouterr()
    assert "winner: zarr blosc-zstd 2s" in out.out and "cold=2" in out.out and "warning:" in out.err
    assert "| training | zarr blosc-zstd 2s |" in (tmp_path / "r.md").read_text()
    assert main(["recommend", "--results", str(tmp_path / "nothing")]) == 1
    assert "no results at" in capsys.readouterr().err
    assert main(["recommend", "--results", str(tmp_path / "r.csv"), "--weights", "speed=1"]) == 1
    assert "unknown weight 'speed'" in capsys.readouterr().err
