"""The main job's plots (matplotlib PNG) from the flattened results of one run.

* ``window_time_vs_size.png``: ms per random 2-s window (warm and cold) against MB on disk, one point
  per configuration, the Pareto front (nothing both faster and smaller) drawn and labelled;
* ``cold_vs_warm.png``: warm and cold ms per window of every configuration, grouped by format;
* ``dataloader.png``: DataLoader windows/s per configuration (0 and 2 workers), n/a marked;
* ``compression_ratio.png``: ratio vs float32 per codec, on the run's synthetic data and on the real
  EEGBCI recordings (``results/compression-real.md``).

Every figure's title names the machine, commit, profile and unit.
"""

from __future__ import annotations

import math
from pathlib import Path

from eegbench import recommend as R
from eegbench.recommend import Config, ResultRow

FORMAT_COLORS = {"hdf5": "#1f77b4", "zarr": "#2ca02c", "parquet": "#d62728"}
BASELINE_COLOR = "#7f7f7f"


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "svg.hashsalt": "eegbench"})
    return plt


def _value(rows: list[ResultRow], bench: str, params: tuple[str, ...]) -> float:
    for r in rows:
        if r.benchmark == bench and r.params == params:
            return r.median
    return math.nan


def _stores(rows: list[ResultRow]) -> list[str]:
    out: list[str] = []
    for r in rows:
        if r.benchmark == R.SIZE and r.params and r.params[0] not in out:
            out.append(r.params[0])
    return out


def _color(store: str) -> str:
    c = Config.parse(store)
    return FORMAT_COLORS.get(c.format, "#9467bd") if c else BASELINE_COLOR


def pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points no other point beats on both coordinates (lower is better on both), by x."""
    front = []
    for x, y, name in sorted(points, key=lambda p: (p[0], p[1])):
        if not front or y < front[-1][1]:
            front.append((x, y, name))
    return front


def _plain_log_ticks(axis) -> None:
    """Ticks of a log axis at 1, 2, 5 x 10^k written as plain numbers (not 4x10^2)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _save(fig, path: Path) -> Path:
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def window_time_vs_size(rows, header: str, path: Path) -> Path:
    plt = _setup()
    fig, axes = plt.subplots(2, 1, figsize=(11, 10))
    for ax, cache in zip(axes, ("warm", "cold")):
        points = []
        for store in _stores(rows):
            size = _value(rows, R.SIZE, (store,)) / 1e6
            ms = _value(rows, R.RANDOM, (store, cache))
            if math.isnan(size) or math.isnan(ms):
                continue
            points.append((size, ms, store))
            config = Config.parse(store)
            marker = "o" if config is None else ("s" if config.chunk_seconds >= 2 else "o")
            ax.scatter(size, ms, color=_color(store), marker=marker if config else "x", s=36, zorder=3)
        front = pareto([p for p in points if Config.parse(p[2])])
        for fmt, color in FORMAT_COLORS.items():
            ax.scatter([], [], color=color, label=fmt)
        ax.scatter([], [], color="grey", marker="o", label="chunk < 2 s")
        ax.scatter([], [], color="grey", marker="s", label="chunk >= 2 s")
        ax.scatter([], [], color=BASELINE_COLOR, marker="x", label="baseline")
        if front:
            # numbered points + the names in the legend: names written beside the points overlapped
            ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, zorder=2,
                    label="Pareto front (nothing smaller and faster):")
            for k, (x, y, name) in enumerate(front, 1):
                ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8,
                            fontweight="bold")
                ax.plot([], [], " ", label=f"{k}  {name}: {x:.0f} MB, {y:.3g} ms")
        for x, y, name in points:
            if Config.parse(name) is None:
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, -9), fontsize=7, color=BASELINE_COLOR)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        _plain_log_ticks(ax.yaxis)
        ax.set_xlabel("size on disk (MB, log scale)")
        ax.set_ylabel("ms per random 2-s window\n(median, log scale; lower is better)")
        ax.set_title(f"{cache} page cache: files {'read before' if cache == 'warm' else 'evicted before each window'}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle(f"Time per window vs bytes on disk — {header}")
    fig.tight_layout()
    return _save(fig, path)


def cold_vs_warm(rows, header: str, path: Path) -> Path:
    plt = _setup()
    stores = [s for s in _stores(rows) if not math.isnan(_value(rows, R.RANDOM, (s, "warm")))]
    stores.sort(key=lambda s: ((Config.parse(s) or Config("~", s, 0)).format, s))
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(stores) + 1.5))
    ys = range(len(stores))
    warm = [_value(rows, R.RANDOM, (s, "warm")) for s in stores]
    cold = [_value(rows, R.RANDOM, (s, "cold")) for s in stores]
    ax.barh([y - 0.2 for y in ys], warm, height=0.4, color=[_color(s) for s in stores], alpha=0.5, label="warm")
    ax.barh([y + 0.2 for y in ys], [0 if math.isnan(c) else c for c in cold], height=0.4,
            color=[_color(s) for s in stores], label="cold")
    for y, c in zip(ys, cold):
        if math.isnan(c):
            ax.text(0, y + 0.2, " n/a", va="center", fontsize=7)
    ax.set_yticks(list(ys), stores, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ms per random 2-s window (median, log); light = warm, dark = cold")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.set_title(f"Cold vs warm page cache per format — {header}", fontsize=9)
    return _save(fig, path)


def dataloader(rows, header: str, path: Path) -> Path:
    plt = _setup()
    stores = [r.params[0] for r in rows if r.benchmark == R.LOADER and r.params[1:] == ("0",)]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(stores) + 1.5))
    ys = list(range(len(stores)))
    for offset, workers, alpha in ((-0.2, "0", 1.0), (0.2, "2", 0.5)):
        vals = [_value(rows, R.LOADER, (s, workers)) for s in stores]
        ax.barh([y + offset for y in ys], [0 if math.isnan(v) else v for v in vals], height=0.4,
                color=[_color(s) for s in stores], alpha=alpha, label=f"{workers} workers")
        for y, v in zip(ys, vals):
            if math.isnan(v):
                ax.text(0, y + offset, " n/a", va="center", fontsize=7)
    ax.set_yticks(ys, stores, fontsize=7)
    ax.invert_yaxis()
    # the in-memory reference can be 10x every store: clip the axis to the stores and write its value
    store_vals = [v for s in stores if s != "in-memory" for w in ("0", "2")
                  if not math.isnan(v := _value(rows, R.LOADER, (s, w)))]
    right = 1.15 * max(store_vals) if store_vals else None
    ax.set_xlim(left=0, right=right)
    if right is not None:
        for y, s in zip(ys, stores):
            for offset, workers in ((-0.2, "0"), (0.2, "2")):
                v = _value(rows, R.LOADER, (s, workers))
                if not math.isnan(v) and v > right:
                    ax.text(right, y + offset, f"{v:.0f} \u2192 ", ha="right", va="center", fontsize=7,
                            color="white", fontweight="bold")
    ax.set_xlabel("windows/s (batch 64, shuffle; higher is better; dark = 0 workers, light = 2 workers)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"DataLoader throughput — {header}", fontsize=9)
    return _save(fig, path)


def real_ratios(path: Path) -> dict[tuple[str, str], float]:
    """(format, codec) -> ratio of integer-count storage in ``results/compression-real.md``."""
    out: dict[tuple[str, str], float] = {}
    if not path.exists():
        return out
    ratio_col = 3
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "ratio vs float32" in cells:  # by name: the table gained a "chunk s" column
            ratio_col = cells.index("ratio vs float32")
            chunk_col = cells.index("chunk s") if "chunk s" in cells else None
            continue
        if len(cells) > ratio_col and "+" not in cells[1]:
            if ratio_col != 3 and chunk_col is not None and cells[chunk_col] != "1":
                continue  # the 1-s chunk rows, as before the table had several chunk spans
            codec = cells[1].rsplit("-", 1)[0] if cells[1][-1:].isdigit() else cells[1]
            try:
                ratio = float(cells[ratio_col])
            except ValueError:
                continue
            if codec == "none" and cells[2] != "float32" or codec != "none" and cells[2] == "float32":
                continue  # like the benchmarks: codecs store integer counts, "none" float32
            out[(cells[0], codec)] = ratio
    return out


def compression_ratio(rows, header: str, profile: str, real_md: Path, path: Path) -> Path:
    plt = _setup()
    synth: dict[tuple[str, str], float] = {}
    for r in rows:
        c = Config.parse(r.params[0]) if r.benchmark == R.RATIO and r.params else None
        if c is not None and not math.isnan(r.median):
            key = (c.format, c.compression)
            synth[key] = max(synth.get(key, 0.0), r.median)
    real = real_ratios(real_md)
    codecs = sorted({k[1] for k in [*synth, *real]}, key=lambda c: (c != "none", c))
    formats = [f for f in FORMAT_COLORS if any(k[0] == f for k in [*synth, *real])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    width = 0.8 / max(1, len(formats))
    for ax, data, title in ((axes[0], synth, f"synthetic ({profile} profile)"),
                            (axes[1], real, "real EEG (EEGBCI S001, 12 runs)")):
        for i, fmt in enumerate(formats):
            xs = [j + (i - (len(formats) - 1) / 2) * width for j in range(len(codecs))]
            vals = [data.get((fmt, c), math.nan) for c in codecs]
            ax.bar(xs, [0 if math.isnan(v) else v for v in vals], width=width, color=FORMAT_COLORS[fmt], label=fmt)
            for x, v in zip(xs, vals):
                ax.text(x, 0.05 if math.isnan(v) else v + 0.05, "n/a" if math.isnan(v) else f"{v:.2f}",
                        ha="center", fontsize=6, rotation=90)
        ax.set_xticks(range(len(codecs)), codecs, rotation=30, ha="right")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("compression ratio vs float32 (higher is better)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Compression ratio per codec (best chunk span) — {header}")
    return _save(fig, path)


def write_all(rows: list[ResultRow], out: Path, header: str, profile: str, real_md: Path) -> dict[str, Path]:
    """Every plot of one run into ``out``; returns title -> path."""
    out.mkdir(parents=True, exist_ok=True)
    return {
        "time per window vs bytes on disk (Pareto front)": window_time_vs_size(rows, header,
                                                                              out / "window_time_vs_size.png"),
        "cold vs warm per format": cold_vs_warm(rows, header, out / "cold_vs_warm.png"),
        "DataLoader throughput per configuration": dataloader(rows, header, out / "dataloader.png"),
        "compression ratio per codec, synthetic and real": compression_ratio(rows, header, profile, real_md,
                                                                             out / "compression_ratio.png"),
    }
