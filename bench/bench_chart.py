"""Render time and peak memory of one trend chart: Pillow (what Scorebot uses) against matplotlib (Agg).

Both draw the same 30-day series with gaps, the target and warning bands and the
latest value labelled, at the same pixel size. Each library runs in fresh child
processes (so one's imports do not count against the other): a child imports the
library, renders once (the cold render), then renders ``--renders`` times; it
reports the import time, the cold render, the median warm render, and how much its
peak resident memory grew over a bare interpreter's. The parent prints the medians
over ``--processes`` children per library and the ratio matplotlib / Pillow.

Usage: .venv/bin/python bench/bench_chart.py [--processes 5] [--renders 20]
(matplotlib is a development requirement for this comparison only).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET, WARNING = 40.0, 70.0


def series(days: int = 30) -> list[tuple[date, float | None]]:
    """A deterministic 30-day series ending 2026-12-02 with four days missing."""
    rng = random.Random(3)
    start, value, points = date(2026, 12, 2) - timedelta(days=days - 1), 55, []
    for i in range(days):
        value = max(0, value + rng.randint(-8, 7))
        points.append((start + timedelta(days=i), None if i in (6, 7, 15, 22) else float(value)))
    return points


def pillow_renderer() -> object:
    """Scorebot's own renderer."""
    sys.path.insert(0, str(ROOT))
    from bot.pages.chart import ChartSpec, render_png

    spec = ChartSpec("Open customer issues", series(), TARGET, WARNING)
    return lambda: render_png(spec)


def matplotlib_renderer() -> object:
    """The same chart with matplotlib's Agg backend, same size in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    sys.path.insert(0, str(ROOT))
    from bot.pages.chart import HEIGHT, WIDTH

    points = series()

    def render() -> bytes:
        figure = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100, facecolor="white")
        axes = figure.add_axes((0.02, 0.12, 0.8, 0.72))
        xs = list(range(len(points)))
        ys = [float("nan") if v is None else v for _, v in points]
        top = max([v for v in ys if v == v] + [WARNING]) * 1.12
        axes.axhspan(0, TARGET, color="#e6f4ea")
        axes.axhspan(TARGET, WARNING, color="#fef7e0")
        axes.axhspan(WARNING, top, color="#fce8e6")
        axes.plot(xs, ys, color="#1a73e8", linewidth=2, marker="o", markersize=3)
        last = max(i for i, v in enumerate(ys) if v == v)
        axes.annotate(f"{ys[last]:g}", (last, ys[last]), xytext=(-10, 8), textcoords="offset points", ha="right")
        axes.set_ylim(0, top)
        axes.set_yticks([TARGET, WARNING], [f"target {TARGET:g}", f"warning {WARNING:g}"])
        axes.yaxis.tick_right()
        ticks = [0, len(points) // 2, len(points) - 1]
        axes.set_xticks(ticks, [f"{points[i][0]:%b} {points[i][0].day}" for i in ticks])
        axes.set_title("Open customer issues · last 30 days", loc="left")
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()

    return render


def child(library: str, renders: int) -> None:
    """Run in a child process: measure one library, print one JSON line."""
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    render = pillow_renderer() if library == "pillow" else matplotlib_renderer()
    imported = time.perf_counter()
    png = render()  # type: ignore[operator]
    cold = time.perf_counter() - imported
    warm = []
    for _ in range(renders):
        t = time.perf_counter()
        render()  # type: ignore[operator]
        warm.append(time.perf_counter() - t)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "import_ms": (imported - started) * 1000,
                "cold_ms": cold * 1000,
                "warm_ms": statistics.median(warm) * 1000,
                "peak_mb": (peak_kb - base_kb) / 1024,
                "png_bytes": len(png),
            }
        )
    )


def measure(library: str, processes: int, renders: int) -> dict[str, float]:
    """Medians over ``processes`` fresh children."""
    rows = []
    for _ in range(processes):
        out = subprocess.run(  # noqa: S603 (this script, fixed arguments)
            [sys.executable, __file__, "--child", library, "--renders", str(renders)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--child", choices=["pillow", "matplotlib"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.renders)
        return
    results = {name: measure(name, args.processes, args.renders) for name in ("pillow", "matplotlib")}
    print(f"30-day chart, medians over {args.processes} processes × {args.renders} renders")
    print(f"{'':12}{'import ms':>11}{'cold ms':>10}{'warm ms':>10}{'peak +MB':>10}{'PNG bytes':>11}")
    for name, r in results.items():
        print(
            f"{name:12}{r['import_ms']:11.1f}{r['cold_ms']:10.1f}{r['warm_ms']:10.1f}"
            f"{r['peak_mb']:10.1f}{r['png_bytes']:11.0f}"
        )
    p, m = results["pillow"], results["matplotlib"]
    print(
        f"matplotlib / pillow: import {m['import_ms'] / p['import_ms']:.1f}×, "
        f"warm render {m['warm_ms'] / p['warm_ms']:.1f}×, peak memory {m['peak_mb'] / p['peak_mb']:.1f}×"
    )


if __name__ == "__main__":
    main()
