"""Which format, codec, chunk span and integer/delta option to use: a pure decision over measured figures.

:func:`recommend` takes the flattened benchmark table (one :class:`ResultRow` per benchmark x
parameter combination, as :mod:`eegbench.results_table` loads it from asv's results or as
:mod:`eegbench.recommend_data` measures it on a user's own recordings) and returns a frozen
:class:`Recommendation`: for every workload the configurations ranked by a weighted score, the
winner, the measurements that decided it, the ``eegbench.save()`` arguments to use, and the
machine, commit and profile the figures come from. Nothing here reads files, runs git or
measures: the same table always gives the same answer.

Scoring (documented, overridable): for each metric of a workload, a configuration's figure is
divided by the best figure any configuration reached (inverted for higher-is-better metrics),
so 1.0 is "as good as the best" and 2.0 "twice as slow / big". A configuration's score is the
weighted geometric mean of these factors::

    score = exp( sum_m w_m * log(factor_m) / sum_m w_m )

A score of 1.00 means best on every weighted metric; 1.25 means 25 % worse than the best on
(weighted) average. Weight 2 on ``cold`` makes a 2x slower cold read cost as much as being 4x worse
on a weight-1 metric. Figures that could not be measured are n/a (NaN): a metric nobody measured is
left out of the workload (and said so); a configuration lacking a weighted figure others have is
ranked after every complete one.

Default weights (:data:`WORKLOADS`):

* ``training``: ``warm`` 1, ``cold`` 1, ``loader`` 1 (random 2-s windows from cache and from disk,
  DataLoader windows/s).
* ``preprocessing``: ``seq_warm`` 1, ``seq_cold`` 1, ``save`` 1 (whole-recording scans, writing).
* ``archive``: ``size`` 2, ``save`` 0.5, and ``integrity`` (every read checksummed) required.
* ``sharing``: ``size`` 1, ``files`` 1, ``window_bytes`` 1 (bytes read per cold window: what a
  remote window costs in transfer, measured locally; the remote suite's own request and time
  figures are published apart in ``results/remote.md`` and are not scored).

Override with ``weights={"cold": 2, "size": 1}`` (``--weights cold=2,size=1``): the given metrics
replace the workload's weights, the others keep theirs; weight 0 drops a metric (``integrity=0``
drops the checksum requirement). Workload ``custom`` uses only the given weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ForeignVersionError, MissingResultsError, OptionError, StaleResultsError

__all__ = ["METRICS", "WORKLOADS", "Config", "Metric", "Ranked", "Recommendation", "ResultRow", "WorkloadResult",
           "check_fresh", "parse_weights", "recommend", "render_markdown", "render_text"]

#: asv benchmark keys the metrics read (the store configuration is always the first parameter)
RANDOM = "bench_random_access.RandomWindow.track_ms_per_window"
COLD_BYTES = "bench_random_access.ColdDiskReads.track_mb_read_per_window"
SEQUENTIAL = "bench_sequential.SequentialRead.track_mb_per_s"
SAVE = "bench_save.Save.time_save"
OPEN = "bench_open.Open.track_open_ms_per_recording"
SIZE = "bench_size.Size.track_bytes"
RATIO = "bench_size.Size.track_compression_ratio"
FILES = "bench_size.Size.track_file_count"
LOADER = "bench_dataloader.DataLoaderThroughput.track_windows_per_s"


@dataclass(frozen=True)
class ResultRow:
    """One measured figure: benchmark x parameter combination, on one machine at one commit.

    ``median`` is in ``unit`` (NaN = could not be measured); ``spread`` is the interquartile range
    of the samples in the same unit (NaN when asv kept no statistics, e.g. ``track_*``).
    ``code_hash`` is the hash of the reader sources that were measured (``""`` when unknown).
    ``date`` (ISO 8601, UTC) is when the run was recorded; asv's commit date for runs eegbench did not record.
    """

    benchmark: str
    params: tuple[str, ...]
    median: float
    spread: float = math.nan
    unit: str = ""
    machine: str = ""
    commit: str = ""
    date: str = ""
    profile: str = ""
    version: str = ""
    code_hash: str = ""


@dataclass(frozen=True)
class Metric:
    """A figure the scoring uses: benchmark ``benchmark`` with the parameters after the store equal
    to ``extra`` (``None`` = the best value over the remaining parameters)."""

    name: str
    benchmark: str
    extra: tuple[str, ...] | None
    higher_is_better: bool
    title: str
    unit: str
    scale: float = 1.0  # display only
    fmt: str = ".3g"

    def show(self, value: float) -> str:
        return "n/a" if value is None or math.isnan(value) else format(value * self.scale, self.fmt)


#: every metric by name (the names ``--weights`` accepts, plus ``integrity``)
METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("warm", RANDOM, ("warm",), False, "warm ms/window", "ms"),
    Metric("cold", RANDOM, ("cold",), False, "cold ms/window", "ms"),
    Metric("loader", LOADER, None, True, "DataLoader windows/s", "windows/s", fmt=".0f"),
    Metric("seq_warm", SEQUENTIAL, ("warm",), True, "seq warm MB/s", "MB/s", fmt=".3g"),
    Metric("seq_cold", SEQUENTIAL, ("cold",), True, "seq cold MB/s", "MB/s", fmt=".3g"),
    Metric("save", SAVE, (), False, "save s", "s"),
    Metric("open", OPEN, (), False, "open ms/recording", "ms"),
    Metric("size", SIZE, (), False, "size MB", "MB", scale=1e-6, fmt=".1f"),
    Metric("files", FILES, (), False, "files", "files", fmt=".0f"),
    Metric("window_bytes", COLD_BYTES, (), False, "MB read/cold window", "MB"),
]}
#: shown next to size, never scored (size already is)
RATIO_METRIC = Metric("ratio", RATIO, (), True, "ratio vs float32", "x", fmt=".2f")

INTEGRITY = "integrity"

#: default weights per workload (see the module docstring); ``integrity`` > 0 = required
WORKLOADS: dict[str, dict[str, float]] = {
    "training": {"warm": 1.0, "cold": 1.0, "loader": 1.0},
    "preprocessing": {"seq_warm": 1.0, "seq_cold": 1.0, "save": 1.0},
    "archive": {"size": 2.0, "save": 0.5, INTEGRITY: 1.0},
    "sharing": {"size": 1.0, "files": 1.0, "window_bytes": 1.0},
}


@dataclass(frozen=True, order=True)
class Config:
    """A store configuration under test, as the benchmarks name it: ``"zarr blosc-zstd 0.5s"``
    (optionally followed by ``delta``, ``int`` or ``float32``)."""

    format: str
    compression: str
    chunk_seconds: float
    delta: bool = False
    integer: str = "auto"  # "auto" | "yes" | "no"

    @classmethod
    def parse(cls, name: str) -> Config | None:
        """The configuration a benchmark parameter names, or None for a baseline (``memmap-npy``)."""
        parts = name.strip().strip("'\"").split()
        if len(parts) < 3 or not parts[2].endswith("s"):
            return None
        try:
            chunk = float(parts[2][:-1])
        except ValueError:
            return None
        flags = set(parts[3:])
        integer = "yes" if "int" in flags else "no" if "float32" in flags else "auto"
        return cls(parts[0], parts[1], chunk, "delta" in flags, integer)

    @property
    def name(self) -> str:
        extra = (" delta" if self.delta else "") + {"auto": "", "yes": " int", "no": " float32"}[self.integer]
        return f"{self.format} {self.compression} {self.chunk_seconds:g}s{extra}"

    def save_kwargs(self) -> dict[str, Any]:
        """Arguments of ``eegbench.save()`` that write this configuration."""
        kwargs: dict[str, Any] = {"format": self.format, "compression": self.compression,
                                  "chunk_seconds": self.chunk_seconds}
        if self.delta:
            kwargs["delta"] = True
        if self.integer != "auto":
            kwargs["integer"] = self.integer == "yes"
        return kwargs

    def save_call(self) -> str:
        return "eegbench.save(ds, path, " + ", ".join(f"{k}={v!r}" for k, v in self.save_kwargs().items()) + ")"

    @property
    def checksummed_reads(self) -> bool:
        """Every read checks a checksum: all but NumPy+Parquet uncompressed (a memory-mapped .npy,
        covered only by ``eegbench verify``)."""
        return not (self.format == "parquet" and self.compression == "none")


@dataclass(frozen=True)
class Ranked:
    """One configuration's place in a workload: score (1.00 = best on every weighted metric), the
    figures (metric name -> value in the metric's unit, NaN = n/a) and what it lacks."""

    config: Config
    score: float
    figures: Mapping[str, float]
    missing: tuple[str, ...] = ()
    excluded: str = ""  # why it is ranked last (a requirement it fails)


@dataclass(frozen=True)
class Reason:
    """A measurement that decided the winner: its figure against the runner-up's."""

    metric: str
    winner_value: float
    runner_up_value: float
    weight: float
    in_favour: bool = True  # False: the runner-up is better on this figure (the winner won despite it)

    def text(self) -> str:
        m = METRICS[self.metric]
        return f"{'' if self.in_favour else 'despite '}{m.title} {m.show(self.winner_value)} vs " \
               f"{m.show(self.runner_up_value)}"


@dataclass(frozen=True)
class WorkloadResult:
    workload: str
    weights: Mapping[str, float]
    ranking: tuple[Ranked, ...]
    decided_by: tuple[Reason, ...]
    notes: tuple[str, ...] = ()

    @property
    def winner(self) -> Ranked:
        return self.ranking[0]

    @property
    def runner_up(self) -> Ranked | None:
        return self.ranking[1] if len(self.ranking) > 1 else None


@dataclass(frozen=True)
class Recommendation:
    """Ranked configurations per workload and where the numbers come from."""

    machine: str
    commit: str
    date: str
    profile: str
    code_hash: str
    workloads: Mapping[str, WorkloadResult]
    source: str = ""  # e.g. "results/asv" or "measured on ./my-data"
    baselines: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


# --- weights ------------------------------------------------------------------------------------------
def parse_weights(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"cold=2,size=1"`` -> ``{"cold": 2.0, "size": 1.0}``; rejects unknown metrics and negative weights."""
    if text is None:
        return {}
    items = text.items() if isinstance(text, Mapping) else (
        part.split("=", 1) if "=" in part else (part, None) for part in text.split(",") if part.strip())
    out: dict[str, float] = {}
    known = sorted([*METRICS, INTEGRITY])
    for key, value in items:
        key = key.strip()
        if key not in known:
            raise OptionError(f"unknown weight {key!r}; metrics are: {', '.join(known)}")
        try:
            weight = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise OptionError(f"weight {key!r} needs a number, e.g. {key}=2 (got {value!r})") from None
        if not weight >= 0 or math.isinf(weight):
            raise OptionError(f"weight {key}={value} must be a finite number >= 0")
        out[key] = weight
    return out


def _weights_for(workload: str, override: Mapping[str, float]) -> dict[str, float]:
    if workload == "custom":
        if not override:
            raise OptionError("workload 'custom' needs weights, e.g. --weights cold=2,size=1")
        return dict(override)
    if workload not in WORKLOADS:
        raise OptionError(f"unknown workload {workload!r}; choose from: {', '.join([*WORKLOADS, 'custom'])}")
    return {k: v for k, v in {**WORKLOADS[workload], **override}.items() if v > 0}


# --- selecting the rows ---------------------------------------------------------------------------------
def _select_run(rows: Sequence[ResultRow], machine: str | None) -> tuple[str, str, list[ResultRow]]:
    if not rows:
        raise MissingResultsError("no benchmark results at all; run `make bench` (or `eegbench recommend --data PATH` "
                                  "to measure your own recordings)")
    machines = sorted({r.machine for r in rows})
    if machine is None:
        machine = max(rows, key=lambda r: (r.date, r.machine)).machine
    elif machine not in machines:
        raise MissingResultsError(f"no results for machine {machine!r}; results exist for: {', '.join(machines)}")
    mine = [r for r in rows if r.machine == machine]
    commit = max(mine, key=lambda r: (r.date, r.commit)).commit
    return machine, commit, [r for r in mine if r.commit == commit]


def _check_versions(rows: Sequence[ResultRow], expected: Mapping[str, str] | None, used: set[str]) -> None:
    if not expected:
        return
    for r in rows:
        if r.benchmark in used and r.benchmark in expected and r.version and r.version != expected[r.benchmark]:
            raise ForeignVersionError(
                f"results for {r.benchmark} were measured by benchmark version {r.version}, but the benchmark suite "
                f"now defines version {expected[r.benchmark]} (its measurement changed meaning): rerun the benchmarks "
                f"(`make bench`, or `make bench-reference` for the committed reference) before recommending")


def _figures(rows: Sequence[ResultRow]) -> tuple[dict[Config, dict[str, float]], dict[str, dict[str, float]]]:
    """metric values per configuration (and per baseline, for context)."""
    by_key: dict[tuple[str, tuple[str, ...]], float] = {(r.benchmark, tuple(r.params)): r.median for r in rows}
    configs: dict[Config, dict[str, float]] = {}
    baselines: dict[str, dict[str, float]] = {}
    stores = []
    for r in rows:
        if r.params and r.params[0] not in stores:
            stores.append(r.params[0])
    for store in stores:
        values: dict[str, float] = {}
        for m in [*METRICS.values(), RATIO_METRIC]:
            if m.extra is None:
                found = [v for (b, p), v in by_key.items() if b == m.benchmark and p and p[0] == store
                         and not math.isnan(v)]
                value = (max(found) if m.higher_is_better else min(found)) if found else math.nan
            else:
                value = by_key.get((m.benchmark, (store, *m.extra)), math.nan)
            values[m.name] = float(value)
        config = Config.parse(store)
        if config is None:
            baselines[store] = values
        else:
            configs[config] = values
    return configs, baselines


# --- scoring ---------------------------------------------------------------------------------------------
def _score(workload: str, weights: Mapping[str, float], configs: Mapping[Config, Mapping[str, float]],
           benchmarks_present: set[str]) -> WorkloadResult:
    notes: list[str] = []
    scored: dict[str, float] = {}
    for name, w in weights.items():
        if name == INTEGRITY:
            continue
        metric = METRICS[name]
        if metric.benchmark not in benchmarks_present:
            raise MissingResultsError(
                f"workload {workload!r} needs {metric.title} ({metric.benchmark}) and the results have none; rerun "
                f"the benchmarks (`make bench`) or drop it with --weights {name}=0")
        if all(math.isnan(v[name]) for v in configs.values()):
            notes.append(f"{metric.title}: not measured (n/a) in these results, left out")
            continue
        scored[name] = w
    if not scored:
        raise MissingResultsError(f"workload {workload!r}: none of its figures ({', '.join(weights)}) were measured")
    best = {}
    for name in scored:
        vals = [v[name] for v in configs.values() if not math.isnan(v[name]) and v[name] > 0]
        if not vals:  # every value 0 (cannot form ratios): treat as n/a rather than as a perfect figure
            notes.append(f"{METRICS[name].title}: no positive figure, left out")
            continue
        best[name] = max(vals) if METRICS[name].higher_is_better else min(vals)
    scored = {k: v for k, v in scored.items() if k in best}
    total_w = sum(scored.values())
    ranked = []
    for config, values in configs.items():
        missing = tuple(n for n in scored if math.isnan(values[n]) or values[n] <= 0)
        log_sum = 0.0
        for name, w in scored.items():
            if name in missing:
                continue
            factor = best[name] / values[name] if METRICS[name].higher_is_better else values[name] / best[name]
            log_sum += w * math.log(factor)
        present_w = total_w - sum(scored[n] for n in missing)
        score = math.exp(log_sum / present_w) if present_w > 0 else math.inf
        excluded = ""
        if weights.get(INTEGRITY, 0) > 0 and not config.checksummed_reads:
            excluded = "reads are not checksummed (memory-mapped .npy; only `eegbench verify` checks it)"
        ranked.append(Ranked(config, score, {k: values[k] for k in [*METRICS, "ratio"]}, missing, excluded))
    ranked.sort(key=lambda r: (bool(r.excluded), bool(r.missing), r.score, r.config))
    if weights.get(INTEGRITY, 0) > 0:
        notes.append("integrity: configurations whose reads are not checksummed are ranked last")
    reasons: list[Reason] = []
    if len(ranked) > 1:
        win, run = ranked[0], ranked[1]
        gains = []
        for name, w in scored.items():
            a, b = win.figures[name], run.figures[name]
            if math.isnan(a) or math.isnan(b) or a <= 0 or b <= 0:
                continue
            gain = w * (math.log(a / b) if METRICS[name].higher_is_better else math.log(b / a))
            gains.append((gain, name))
        gains.sort(key=lambda g: (-g[0], g[1]))
        reasons = [Reason(n, win.figures[n], run.figures[n], scored[n]) for g, n in gains if g > 0][:3]
        against = [(g, n) for g, n in gains if g < 0]
        reasons += [Reason(n, win.figures[n], run.figures[n], scored[n], False) for g, n in against[-1:]]
    return WorkloadResult(workload, dict(weights), tuple(ranked), tuple(reasons), tuple(notes))


def recommend(rows: Iterable[ResultRow], *, workloads: Sequence[str] | None = None,
              weights: Mapping[str, float] | str | None = None, machine: str | None = None,
              expected_versions: Mapping[str, str] | None = None, source: str = "") -> Recommendation:
    """Rank every store configuration of ``rows`` for each workload.

    ``rows``: the flattened results (every machine and commit may be mixed: the newest run of
    ``machine`` is used, default the machine with the newest results). ``weights`` override the
    workloads' defaults (see the module docstring). ``expected_versions`` (benchmark -> version of
    the benchmark suite in use) makes results of another benchmark version a
    :class:`ForeignVersionError`. Raises :class:`MissingResultsError` when a workload's benchmarks
    are absent. Pure: no I/O.
    """
    rows = list(rows)
    override = parse_weights(weights)
    names = list(workloads) if workloads else list(WORKLOADS)
    per_workload = {w: _weights_for(w, override) for w in names}
    machine, commit, run = _select_run(rows, machine)
    used = {METRICS[m].benchmark for ws in per_workload.values() for m in ws if m != INTEGRITY}
    _check_versions(run, expected_versions, used)
    configs, baselines = _figures(run)
    if not configs:
        raise MissingResultsError(f"the results of {machine} at {commit[:10]} name no store configuration "
                                  f"(only baselines); run `make bench`")
    present = {r.benchmark for r in run}
    results = {w: _score(w, ws, configs, present) for w, ws in per_workload.items()}
    first = run[0]
    return Recommendation(machine, commit, max(r.date for r in run), first.profile, first.code_hash, results,
                          source, baselines)


def check_fresh(rec: Recommendation | Sequence[ResultRow], installed_hash: str, *,
                commits_behind: int | None = None, changed: Sequence[str] = (), rerun: str = "make bench") -> None:
    """Raise :class:`StaleResultsError` when the figures were measured on reader code other than
    ``installed_hash`` (the hash of the installed readers' sources). ``commits_behind`` and
    ``changed`` (from git, computed by the caller) make the message say how far behind they are."""
    if isinstance(rec, Recommendation):
        measured, commit = rec.code_hash, rec.commit
    else:
        measured, commit = (rec[0].code_hash, rec[0].commit) if rec else ("", "")
    if measured and measured == installed_hash:
        return
    how = "" if commits_behind is None else (
        f"; {commits_behind} commit{'s' if commits_behind != 1 else ''} since then changed the readers"
        + (f" ({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})" if changed else ""))
    what = "carry no hash of the reader sources" if not measured else \
        f"were measured on readers {measured} and the installed readers are {installed_hash}"
    raise StaleResultsError(f"the results (commit {commit[:10] or 'unknown'}) {what}{how}: rerun `{rerun}` "
                            f"(or pass --allow-stale to use them anyway)")


# --- rendering (pure: Recommendation -> text) -----------------------------------------------------------
def _table_metrics(result: WorkloadResult) -> list[Metric]:
    names = [n for n in result.weights if n in METRICS]
    if "size" in names:
        names.insert(names.index("size") + 1, "ratio")
    return [METRICS[n] if n in METRICS else RATIO_METRIC for n in names]


def render_markdown(rec: Recommendation, *, top: int | None = None, plots: Mapping[str, str] | None = None) -> str:
    """The recommendation as Markdown: header (machine, commit, profile, units), the winner per
    workload with its reasons and ``save()`` call, and the ranked table per workload."""
    lines = ["# Format recommendation", "",
             f"Machine **{rec.machine}**, commit `{rec.commit[:10]}`, profile **{rec.profile or 'unknown'}**, "
             f"measured {rec.date or 'unknown'}" + (f", reader hash `{rec.code_hash}`" if rec.code_hash else "")
             + (f"; source: {rec.source}" if rec.source else "") + ".",
             "Units: ms per 2-s all-channel window, MB/s of float32 samples, s per save of 2 recordings, "
             "MB on disk (10^6 bytes), windows/s (batch 64). n/a = not measured. Score: weighted geometric mean of "
             "each figure's factor to the best configuration (1.00 = best on every weighted figure).",
             "Generated by `python -m benchmarks.publish` from the asv results; do not edit.", "",
             "## Winners", "", "| workload | configuration | score | decided by | save() |", "|---|---|---|---|---|"]
    for w, res in rec.workloads.items():
        why = "; ".join(r.text() for r in res.decided_by) or "only configuration"
        lines.append(f"| {w} | {res.winner.config.name} | {res.winner.score:.2f} | {why} | "
                     f"`{res.winner.config.save_call()}` |")
    lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"* [{title}]({path})" for title, path in plots.items()] + [""]
    for w, res in rec.workloads.items():
        metrics = _table_metrics(res)
        weights = ", ".join(f"{k}={v:g}" for k, v in res.weights.items())
        lines += [f"## {w}", "", f"Weights: {weights}." + "".join(f" {n}." for n in res.notes), ""]
        lines.append("| rank | configuration | score | " + " | ".join(f"{m.title}" for m in metrics) + " |")
        lines.append("|---|---|---|" + "---|" * len(metrics))
        for i, r in enumerate(res.ranking[:top] if top else res.ranking, 1):
            score = "n/a" if math.isinf(r.score) else f"{r.score:.2f}"
            flag = " (excluded: " + r.excluded + ")" if r.excluded else (
                " (missing: " + ", ".join(r.missing) + ")" if r.missing else "")
            lines.append(f"| {i} | {r.config.name}{flag} | {score} | "
                         + " | ".join(m.show(r.figures.get(m.name, math.nan)) for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


def render_text(rec: Recommendation, *, top: int = 8) -> str:
    """Plain-text report for the terminal: header, then per workload the winner, its reasons, the
    ``save()`` call and the top ``top`` configurations."""
    out = [f"machine {rec.machine}, commit {rec.commit[:10]}, profile {rec.profile or 'unknown'}, measured "
           f"{rec.date or 'unknown'}" + (f" ({rec.source})" if rec.source else ""),
           "units: ms per 2-s window, MB/s, s per save, MB on disk, windows/s; n/a = not measured; "
           "score 1.00 = best on every weighted figure"]
    for w, res in rec.workloads.items():
        metrics = _table_metrics(res)
        out += ["", f"== {w} (" + ", ".join(f"{k}={v:g}" for k, v in res.weights.items()) + ")",
                f"winner: {res.winner.config.name} (score {res.winner.score:.2f})"]
        if res.runner_up is not None:
            out.append(f"  vs runner-up {res.runner_up.config.name}: "
                       + ("; ".join(r.text() for r in res.decided_by) or "tie"))
        out.append(f"  use: {res.winner.config.save_call()}")
        out += [f"  note: {n}" for n in res.notes]
        head = ["rank", "configuration", "score"] + [m.title for m in metrics]
        body = []
        for i, r in enumerate(res.ranking[:top], 1):
            body.append([str(i), r.config.name + (" *" if r.excluded or r.missing else ""),
                         "n/a" if math.isinf(r.score) else f"{r.score:.2f}"]
                        + [m.show(r.figures.get(m.name, math.nan)) for m in metrics])
        widths = [max(len(row[j]) for row in [head, *body]) for j in range(len(head))]
        out += ["  " + "  ".join(c.ljust(wd) for c, wd in zip(row, widths)) for row in [head, *body]]
    return "\n".join(out)
