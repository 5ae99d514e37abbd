"""``efficacy_sweep(...)``: the harness at several sizes of one class, in one report.

Does a generator help more when its class is rarer? Each size is a full ``efficacy`` run with that
class cut to N training images (the same seeded cut as ``cut={class: N}``), in ``out/<class>-<N>/``
with its own store, report and results. ``out/sweep.md``, ``out/sweep.png`` and ``out/sweep.json``
put each arm's gain over duplication (paired over seeds, 95% interval) against the class's training
count, for balanced accuracy and for the class's recall.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gan_augment.core.errors import ConfigError
from gan_augment.core.serialization import atomic_write_bytes, atomic_write_text

from .report import fmt, metric_name
from .runner import efficacy
from .stats import by_seed, paired_difference
from .store import write_json

BAR = "real+dup"


def _sizes(sweep: Mapping[str, Sequence[int]]) -> tuple[str, list[int]]:
    if not isinstance(sweep, Mapping) or len(sweep) != 1:
        raise ConfigError("sweep must name one class and its sizes, e.g. sweep={'basophil': [19, 50, 100]} "
                          "(CLI: --cut basophil=19 --cut basophil=50 ...).")
    (cls, sizes), = sweep.items()
    sizes = list(sizes)
    if len(sizes) < 2 or len(set(sizes)) != len(sizes):
        raise ConfigError(f"a sweep of {cls!r} needs two or more different sizes, got {sizes}.")
    return cls, sorted(int(n) for n in sizes)


def gains(results: dict[str, Any], metrics: list[str]) -> dict[str, dict[str, Any]]:
    """{arm: {metric: interval of arm - real+dup, paired by seed}} for every arm but the bar."""
    runs, arms = results["runs"], results["protocol"]["arms"]
    return {arm: {m: paired_difference(by_seed(runs, arm, m), by_seed(runs, BAR, m)).to_dict() for m in metrics}
            for arm in arms if arm != BAR}


def efficacy_sweep(data: Any = None, generators: Any = None, *, sweep: Mapping[str, Sequence[int]],
                   out: str | Path = "efficacy-sweep", cut: Mapping[str, int] | None = None,
                   setting: str | None = None, minority: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """``efficacy(...)`` once per size in ``sweep`` ({class: [N, ...]}); other arguments as ``efficacy``
    (``arms`` must include ``real+dup``, the bar). Returns ``{"class", "points": [...], "paths"}``."""
    cls, sizes = _sizes(sweep)
    if BAR not in kwargs.get("arms", (BAR,)):
        raise ConfigError(f"a sweep charts each arm's gain over {BAR}: include it in arms.")
    if cut and cls in cut:
        raise ConfigError(f"class {cls!r} is both swept and cut; drop it from cut.")
    out = Path(out)
    minority = minority or cls
    metrics = list(dict.fromkeys(["balanced_accuracy", f"recall:{cls}"]))
    points = []
    for n in sizes:
        res = efficacy(data, generators, cut={**(cut or {}), cls: n}, out=out / f"{cls}-{n}", minority=minority,
                       setting=f"{setting + ', ' if setting else ''}{cls} cut to {n}", **kwargs)
        points.append({"cut": n, "train_count": res["data"]["counts"]["train"][cls],
                       "val_count": res["data"]["counts"]["val"][cls],
                       "test_count": res["data"]["counts"]["test"][cls],
                       "added": res["added_per_class"].get(cls), "chosen": res["selection"]["chosen"],
                       "gain_over_dup": gains(res, metrics), "results": res["paths"]["results"]})
    summary = {"format": "gan-augment-efficacy-sweep/1", "class": cls, "metrics": metrics, "setting": setting,
               "points": points}
    write_json(out / "sweep.json", summary)
    plot(summary, out / "sweep.png")
    atomic_write_text(out / "sweep.md", render(summary))
    summary["paths"] = {"results": str(out / "sweep.json"), "report": str(out / "sweep.md"),
                        "chart": str(out / "sweep.png")}
    return summary


def render(summary: dict[str, Any]) -> str:
    cls, metrics = summary["class"], summary["metrics"]
    lines = [f"# Efficacy sweep: {cls} at {', '.join(str(p['train_count']) for p in summary['points'])} "
             "training images", "",
             f"Each row is a full efficacy run with {cls} cut to that many training images; the gain is the "
             f"arm minus `{BAR}`, paired over the same seeds, mean [95% t-interval]. An interval above 0 beats "
             "duplication.", "", "![sweep](sweep.png)", ""]
    for m in metrics:
        arms = list(summary["points"][0]["gain_over_dup"])
        lines += [f"## Gain over duplication: {metric_name(m)}", "",
                  f"| {cls} train (val, test) | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
        for p in summary["points"]:
            lines.append(f"| {p['train_count']} ({p['val_count']}, {p['test_count']}) | "
                         + " | ".join(fmt(p["gain_over_dup"][a][m], signed=True) for a in arms) + " |")
        lines.append("")
    lines += ["Per-size reports: " + ", ".join(f"[{cls}={p['cut']}]({cls}-{p['cut']}/report.md)"
                                              for p in summary["points"]), ""]
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts, metrics = summary["points"], summary["metrics"]
    arms = list(pts[0]["gain_over_dup"])
    x = [p["train_count"] for p in pts]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.8), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for i, arm in enumerate(arms):
            ivs = [p["gain_over_dup"][arm][m] for p in pts]
            mean = [iv["mean"] if iv["mean"] is not None else float("nan") for iv in ivs]
            lo = [iv["mean"] - iv["low"] if iv["low"] is not None else 0 for iv in ivs]
            hi = [iv["high"] - iv["mean"] if iv["high"] is not None else 0 for iv in ivs]
            shift = [v * (1 + 0.015 * (i - len(arms) / 2)) for v in x]  # side by side, not on top
            ax.errorbar(shift, mean, yerr=[lo, hi], marker="o", capsize=3, label=arm)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(x, [str(v) for v in x])
        ax.set_xlabel(f"{summary['class']} training images")
        ax.set_ylabel(f"gain over {BAR}: {metric_name(m)}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
