"""The results as a markdown report and a PNG chart (mean and 95% interval per arm)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from gan_augment.core.serialization import atomic_write_bytes, atomic_write_text

NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1"}


def metric_name(m: str) -> str:
    return f"{m.split(':', 1)[1]} recall" if m.startswith("recall:") else NAMES.get(m, m)


def fmt(iv: dict[str, Any], signed: bool = False) -> str:
    if iv["mean"] is None:
        return "n/a"
    f = "{:+.3f}" if signed else "{:.3f}"
    if iv["low"] is None:
        return f.format(iv["mean"]) + f" (n={iv['n']})"
    return f"{f.format(iv['mean'])} [{f.format(iv['low'])}, {f.format(iv['high'])}]"


def bar_of(arm: str, paired: dict[str, Any]) -> str:
    """The arm a synthetic arm must beat: real+classic+dup for real+classic+synthetic when it was
    trained (results from before that arm existed compare with real+dup)."""
    if arm == "real+classic+synthetic" and f"{arm} - real+classic+dup" in paired:
        return "real+classic+dup"
    return "real+dup"


def verdict(results: dict[str, Any]) -> list[str]:
    """One plain sentence per synthetic arm and headline metric: did it beat duplication?"""
    paired = results["summary"]["paired"]
    out = []
    for arm in ("real+synthetic", "real+classic+synthetic"):
        bar = bar_of(arm, paired)
        key = f"{arm} - {bar}"
        if key not in paired:
            continue
        for m in results["headline"]:
            iv = paired[key][m]
            if iv["mean"] is None or iv["low"] is None:
                out.append(f"`{arm}` against `{bar}`, {metric_name(m)}: too few seeds for an interval.")
                continue
            diff = f"{fmt(iv, signed=True)} (paired over {iv['n']} seeds, 95% interval)"
            what = "duplication" if bar == "real+dup" else "duplication with classic augmentation"
            if iv["low"] > 0:
                word = f"beat {what}"
            elif iv["high"] < 0:
                word = f"did worse than {what}"
            else:
                word = f"did not beat {what} (the interval includes 0)"
            out.append(f"**`{arm}` {word}** on {metric_name(m)}: {diff}.")
    if not out:
        out.append("No synthetic arm was compared with `real+dup`.")
    return out


def table(rows: dict[str, dict[str, Any]], metrics: list[str], signed: bool, head: str) -> list[str]:
    lines = [f"| {head} | " + " | ".join(metric_name(m) for m in metrics) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    for name, ivs in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(ivs[m], signed) for m in metrics) + " |")
    return lines


def filter_text(f: dict[str, Any] | None) -> str:
    """The filter's class and its min_confidence, if it has one."""
    if not f:
        return "None"
    conf = (f.get("config") or {}).get("min_confidence")
    name = f["class"].rsplit(".", 1)[-1]
    return f"{name}({conf})" if conf is not None else name


def counts(c: dict[str, int]) -> str:
    return f"{sum(c.values())} ({', '.join(f'{k} {v}' for k, v in c.items())})"


def data_lines(results: dict[str, Any]) -> list[str]:
    """Where the validation and test images came from and how many of each class (old results
    without external files say what they have)."""
    d, sel = results["data"], results["selection"]
    val_from = sel.get("val_source") or "a carve of the training split"
    test_from = (d.get("test_source") or {}).get("path", "the data file")
    return [f"Training images: {counts(d['counts']['train'])}.", "",
            f"Validation images (every choice is made on these): {counts(d['counts']['val'])}, from {val_from}.", "",
            f"Test images (read once, after every choice): {counts(d['counts']['test'])}, from {test_from} "
            f"{d.get('split_test', 'test')!r} rows."]


def run_line(results: dict[str, Any]) -> str:
    p, t = results["protocol"], results.get("timing")
    prec = p.get("precision") or {"used": p["recipe"].get("precision", "fp32"), "why": "as recorded"}
    out = f"Precision: {prec['why']}."
    if t:
        out += f" Time: {t['seconds']:.0f} s ({t['trained']} runs trained, {t['stored']} reused from the store)."
    return out


def options_text(choice: dict[str, Any]) -> str:
    """The SyntheticMix epoch options of a candidate, when it has them (older results have none)."""
    parts = []
    if choice.get("replace"):
        parts.append(f"replace {choice['replace']}")
    if choice.get("synthetic_epochs") is not None:
        parts.append(f"synthetic epochs {choice['synthetic_epochs']}")
    return "".join(f", {p}" for p in parts)


def render(results: dict[str, Any]) -> str:
    s, p, d = results["summary"], results["protocol"], results["data"]
    metrics = s["metrics"]
    chosen = results["selection"]["chosen"]
    title = results.get("setting") or "efficacy"
    lines = [f"# Efficacy: {title}", "", *verdict(results), "",
             f"Classifier `{p['recipe']['model']}` (timm, from scratch), {p['recipe']['epochs']} epochs "
             f"of {p['steps_per_epoch']} steps (batch {p['recipe']['batch_size']}, AdamW + one-cycle, "
             f"lr {p['recipe']['lr']}), {p['image_size']}px, {len(p['seeds'])} seeds, device {p['device']}. "
             f"Step policy: {p['recipe']['step_policy']}. {run_line(results)}", "",
             f"Chosen on the validation split ({results['selection']['how']}): generator "
             f"`{chosen['generator']}`, ratio {chosen['ratio']}, strategy {chosen['strategy']!r}, filter "
             f"{filter_text(chosen['filter'])}{options_text(chosen)}. `real+dup` adds the same items per "
             f"class as the synthetic arm: {results['added_per_class']}.", "",
             *data_lines(results), "",
             "![efficacy](efficacy.png)", "", "## Per arm: mean [95% t-interval] over seeds", "",
             *table(s["arms"], metrics, False, "arm"), "",
             "## Paired differences over the same seeds: mean [95% t-interval]", "",
             "An interval entirely above 0 means the first arm scored higher on these seeds; one that "
             "contains 0 means these seeds cannot tell the two apart.", "",
             *table(s["paired"], metrics, True, "comparison"), ""]
    recalls = [f"recall:{c}" for c in d["class_names"]]
    lines += ["## Per-class recall", "", *table(results["recall_summary"], recalls, False, "arm"), ""]
    scores = results["selection"].get("scores") or []
    if len(scores) > 1:
        lines += ["## Selection on the validation split", "",
                  f"| candidate | {metric_name(results['selection']['criterion'])} |", "|---|---|"]
        for sc in scores:
            c = sc["choice"]
            score = f"failed: {sc['failed']}" if sc.get("failed") else fmt(sc["score"])
            lines.append(f"| {c['generator']}, ratio {c['ratio']}, {c['strategy']!r}, filter "
                         f"{filter_text(c['filter'])}{options_text(c)} | {score} |")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s = results["summary"]
    metrics, arms = s["metrics"], list(s["arms"])
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(metrics) * max(1, len(arms)) / 3, 3.8))
    w = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        ivs = [s["arms"][arm][m] for m in metrics]
        means = [iv["mean"] if iv["mean"] is not None else np.nan for iv in ivs]
        lo = [iv["mean"] - iv["low"] if iv["low"] is not None else 0 for iv in ivs]
        hi = [iv["high"] - iv["mean"] if iv["high"] is not None else 0 for iv in ivs]
        ax.bar(np.arange(len(metrics)) + i * w, means, w, yerr=[lo, hi], capsize=3, label=arm)
    ax.set_xticks(np.arange(len(metrics)) + w * (len(arms) - 1) / 2, [metric_name(m) for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test score (mean, 95% interval)")
    ax.set_title(results.get("setting") or "efficacy")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write(results: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    md, png = out / "report.md", out / "efficacy.png"
    plot(results, png)
    atomic_write_text(md, render(results))
    return md, png
