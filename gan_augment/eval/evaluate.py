"""``evaluate``: a generator's samples against held-out real images, every metric beside its floor
(the same metric of real training images against the same held-out images)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.data import ImageDataset, as_dataset
from gan_augment.core.errors import ConfigError, DataError
from gan_augment.eval.extractors import load_extractor
from gan_augment.eval.metrics import (
    density_coverage,
    fid_from_features,
    float01,
    inception_score_from_logits,
    kid_from_features,
    memorisation_check,
    ms_ssim_diversity,
    ms_ssim_settings,
    precision_recall,
)
from gan_augment.eval.separability import separability as probe_separability


# ---- the report ------------------------------------------------------------------------------
def _pair(value, floor) -> dict[str, Any]:
    return {"value": value, "floor": floor}


def _compare(fake_f, fake_x, cand_f, cand_x, test_f, k_pr: int, k_dc: int, n_pairs: int,
             seed: int, kid_subsets: int) -> dict[str, Any]:
    """One group's figures: synthetic vs test beside real-train-subset vs test."""
    fid = _pair(fid_from_features(test_f, fake_f), fid_from_features(test_f, cand_f))
    kid = _pair(kid_from_features(test_f, fake_f, subsets=kid_subsets, seed=seed),
                kid_from_features(test_f, cand_f, subsets=kid_subsets, seed=seed))
    pr_f, pr_c = precision_recall(test_f, fake_f, k_pr), precision_recall(test_f, cand_f, k_pr)
    dc_f, dc_c = density_coverage(test_f, fake_f, k_dc), density_coverage(test_f, cand_f, k_dc)
    return {
        "n_synthetic": len(fake_f), "n_real_test": len(test_f),
        "fid": fid, "kid": kid,
        "precision": _pair(pr_f["precision"], pr_c["precision"]),
        "recall": _pair(pr_f["recall"], pr_c["recall"]),
        "density": _pair(dc_f["density"], dc_c["density"]),
        "coverage": _pair(dc_f["coverage"], dc_c["coverage"]),
        "ms_ssim": _pair(ms_ssim_diversity(fake_x, n_pairs, seed), ms_ssim_diversity(cand_x, n_pairs, seed)),
    }


def _as_images(obj: Any, class_names: list[str]) -> tuple[torch.Tensor, np.ndarray | None]:
    """Synthetic images given directly: a tensor, (images, labels) or an ImageDataset."""
    if isinstance(obj, ImageDataset):
        idx = [class_names.index(n) if n in class_names else -1 for n in obj.class_names]
        lab = np.array([idx[v] for v in obj.labels], dtype=np.int64)
        if (lab < 0).any():
            raise DataError(f"synthetic classes {obj.class_names} are not all among the real ones {class_names}.")
        return obj.tensor(), lab
    labels = None
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        obj, labels = obj
        labels = np.asarray(labels.tolist() if hasattr(labels, "tolist") else labels)
        if labels.dtype.kind in "US":
            labels = np.array([class_names.index(str(v)) for v in labels], dtype=np.int64)
        labels = labels.astype(np.int64)
    x = torch.as_tensor(np.asarray(obj)) if not torch.is_tensor(obj) else obj
    if x.ndim != 4:
        raise DataError(f"synthetic images must be (N, C, H, W), got shape {tuple(x.shape)}.")
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    return x, labels


def _sample_model(model, counts: dict[int, int], names: list[str], seed: int,
                  chunk: int = 256) -> tuple[torch.Tensor, np.ndarray]:
    """Draw ``counts[c]`` images of each data class c from the model, reproducibly from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for c, n_c in counts.items():
        label = names[c] if model.conditional else None
        for s in range(0, n_c, chunk):
            m = min(chunk, n_c - s)
            xs.append(model.sample(m, labels=label, generator=g).float().cpu())
            ys.append(np.full(m, c, dtype=np.int64))
    return torch.cat(xs), np.concatenate(ys)


def evaluate(model_or_images: Any, real_train: Any, real_test: Any, extractor: Any,
             per_class: bool = True, n: int | None = None, seed: int = 0,
             classes: Sequence[str] | None = None, k: int = 3, k_density: int = 5,
             n_pairs: int = 200, kid_subsets: int = 100, memorisation_percentile: float = 1.0,
             device: str | None = None, separability: bool = True) -> dict[str, Any]:
    """A JSON-able report of a generator (or a set of synthetic images) against real TEST images.

    ``n`` caps the synthetic images drawn; per class they follow the real TRAIN class counts,
    and the floor uses a real TRAIN subset with exactly those counts. ``separability`` adds the
    shortcut probe (:mod:`gan_augment.eval.separability`): per class, the ROC AUC of a small CNN
    telling the synthetic images from the real TRAINING images they would be mixed with.
    """
    ext = load_extractor(extractor, device=device)
    is_model = isinstance(model_or_images, GenerativeAugmenter)
    size = model_or_images.image_shape[-1] if is_model else None
    chans = model_or_images.image_shape[0] if is_model else None
    train, test = as_dataset(real_train, size, chans), as_dataset(real_test, size, chans)
    if train.class_names != test.class_names:
        raise DataError(f"train classes {train.class_names} and test classes {test.class_names} differ; use one file with a split.")
    names = train.class_names
    # which data classes are evaluated, and which synthetic group each belongs to
    keep = list(range(len(names)))
    if classes:
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise ConfigError(f"unknown class {unknown[0]!r}; the data has: {', '.join(names)}.")
        keep = [names.index(c) for c in classes]
    one_group = False
    if is_model:
        mnames = model_or_images.class_names
        if model_or_images.conditional:
            keep = [c for c in keep if names[c] in mnames]
            if not keep:
                raise ConfigError(f"the model's classes {mnames} share none with the data's {names}.")
        elif mnames[0] in names:
            if classes and mnames[0] not in classes:
                raise ConfigError(f"the model generates {mnames[0]!r} only; drop --classes or include it.")
            keep = [names.index(mnames[0])]
        else:
            one_group = True  # an unconditional model of everything kept
    rng = np.random.default_rng(seed)
    tr_idx = {c: np.nonzero(train.labels == c)[0] for c in keep}
    te_idx = {c: np.nonzero(test.labels == c)[0] for c in keep}
    total = sum(len(v) for v in tr_idx.values())
    if total == 0 or sum(len(v) for v in te_idx.values()) < 2:
        raise DataError("too few real images in the kept classes to evaluate: need train images and at least 2 test images.")
    if n is not None and n < 2:
        raise ConfigError(f"n must be at least 2, got {n}.")
    counts = {c: len(v) if n is None or n >= total else int(round(n * len(v) / total)) for c, v in tr_idx.items()}
    counts = {c: v for c, v in counts.items() if v > 0}
    # synthetic images and their (data) class labels
    if is_model:
        if one_group:
            xs, _ = _sample_model(model_or_images, {0: sum(counts.values())}, ["all"], seed)
            ys = np.concatenate([np.full(v, c) for c, v in counts.items()])
        else:
            xs, ys = _sample_model(model_or_images, counts, names, seed)
    else:
        xs, ys = _as_images(model_or_images, names)
        if ys is None:
            one_group = True
            ys = np.full(len(xs), keep[0])
        sel = np.nonzero(np.isin(ys, keep))[0] if not one_group else np.arange(len(xs))
        if n is not None:
            sel = rng.permutation(sel)[:n]
        xs, ys = xs[torch.as_tensor(sel)], ys[sel]
        if len(xs) < 2:
            raise DataError("fewer than 2 synthetic images in the kept classes.")
        if not one_group:
            counts = {c: min(int((ys == c).sum()), len(tr_idx[c])) for c in keep if (ys == c).sum() > 0}
    xs = float01(xs).clamp(0, 1)
    # floor candidates: a real TRAIN subset with the synthetic class counts
    if one_group:
        pool = np.concatenate([tr_idx[c] for c in keep])
        cand_sel = rng.permutation(pool)[: min(len(xs), len(pool))]
    else:
        cand_sel = np.concatenate([rng.permutation(tr_idx[c])[:v] for c, v in counts.items()])
    train_x = float01(train.tensor()[torch.as_tensor(np.concatenate([tr_idx[c] for c in keep]))])
    test_sel = np.concatenate([te_idx[c] for c in keep])
    test_x, test_y = float01(test.tensor()[torch.as_tensor(test_sel)]), test.labels[test_sel]
    cand_x, cand_y = float01(train.tensor()[torch.as_tensor(cand_sel)]), train.labels[cand_sel]
    if xs.shape[1:] != test_x.shape[1:]:
        raise DataError(f"synthetic images are {tuple(xs.shape[1:])} but real ones {tuple(test_x.shape[1:])}; "
                        "resize them or load the data with the model's image size.")

    fake_f, fake_l = ext.extract(xs)
    cand_f, cand_l = ext.extract(cand_x)
    test_f, test_l = ext.extract(test_x)
    train_f, _ = ext.extract(train_x)

    overall = _compare(fake_f, xs, cand_f, cand_x, test_f, k, k_density, n_pairs, seed, kid_subsets)
    if not one_group and len(counts) > 1:
        # diversity is a within-class property: average the per-class MS-SSIM
        per = [(ms_ssim_diversity(xs[torch.as_tensor(ys == c)], n_pairs, seed + c)["mean"],
                ms_ssim_diversity(cand_x[torch.as_tensor(cand_y == c)], n_pairs, seed + c)["mean"])
               for c in counts]
        overall["ms_ssim"] = _pair({"mean": float(np.nanmean([p[0] for p in per])), "over": "classes"},
                                   {"mean": float(np.nanmean([p[1] for p in per])), "over": "classes"})
    is_name = "inception_score" if ext.kind.startswith("inception") else "domain_is"
    overall[is_name] = _pair(inception_score_from_logits(fake_l, seed=seed),
                             inception_score_from_logits(test_l, seed=seed))
    overall["memorisation"] = memorisation_check(fake_f, xs, train_f, train_x, test_f, test_x,
                                                 percentile=memorisation_percentile)
    report: dict[str, Any] = {
        "extractor": ext.describe(),
        "reference": "real test split (held out); floor = real train subset with the synthetic class counts vs the same test images",
        "synthetic": ({"model": getattr(model_or_images, "name", None), "config": model_or_images.get_config()}
                      if is_model else {"model": None, "source": "images"}),
        "settings": {"n_synthetic": len(xs), "seed": seed, "k_precision_recall": k, "k_density": k_density,
                     "ms_ssim_pairs": n_pairs, "ms_ssim": _jsonable(ms_ssim_settings(int(xs.shape[-1]))),
                     "kid_subsets": kid_subsets, "image_shape": list(xs.shape[1:]),
                     "classes": [names[c] for c in counts] if not one_group else [names[c] for c in keep]},
        "overall": overall,
        "notes": [
            "lower is better: fid, kid, ms_ssim (diversity); higher is better: precision, recall, coverage, "
            f"{is_name}; density ~1 and nn_ratio ~1 match real data.",
            "the floor is the value real images get; a generator cannot be expected to beat it.",
        ],
    }
    if ext.kind == "domain-cnn":
        report["notes"].append(
            "domain features come from a classifier trained on the real train split; train images are "
            "familiar to it, which can make the floor slightly pessimistic.")
        report["notes"].append(f"{is_name} is an Inception-Score analogue from the domain classifier's "
                               "class probabilities; it is not comparable to Inception Score figures.")
    if ext.class_names and not set(report["settings"]["classes"]) & set(ext.class_names):
        report["notes"].append(
            f"the extractor was trained on other classes ({', '.join(ext.class_names)}); its features may "
            "miss what matters here. Train one on this data with `gan-augment train-extractor`.")
    if per_class and not one_group:
        report["per_class"] = {}
        ext_names = ext.class_names or []
        for c in counts:
            f = torch.as_tensor(ys == c)
            cm, tm = torch.as_tensor(cand_y == c), torch.as_tensor(test_y == c)
            entry = _compare(fake_f[f], xs[f], cand_f[cm], cand_x[cm], test_f[tm], k, k_density,
                             n_pairs, seed + c, kid_subsets)
            if names[c] in ext_names:  # does the domain classifier see the intended class?
                j = ext_names.index(names[c])
                entry["class_agreement"] = _pair(float((fake_l[f].argmax(1) == j).double().mean()),
                                                 float((test_l[tm].argmax(1) == j).double().mean()))
            report["per_class"][names[c]] = entry
    if separability:
        _add_separability(report, xs, ys, train, test, keep if one_group else list(counts), one_group, seed,
                          device)
    return _jsonable(report)


def _add_separability(report: dict[str, Any], xs: torch.Tensor, ys: np.ndarray, train: ImageDataset,
                      test: ImageDataset, classes: list[int], one_group: bool, seed: int,
                      device: str | None) -> None:
    """report["separability"]: the probe per class (or once for an unconditional group), each
    beside its floor (the same probe between the class's real TRAIN and real TEST images: what
    two real samples of these sizes score), and the means in report["overall"], where cards and
    the table read them."""
    names, real, held_out = train.class_names, train.tensor(), test.tensor()
    groups = {"all": (classes, None)} if one_group else {names[c]: ([c], c) for c in classes}
    per: dict[str, Any] = {}
    for name, (members, c) in groups.items():
        r = real[torch.as_tensor(np.isin(train.labels, members))]
        s = xs if c is None else xs[torch.as_tensor(ys == c)]
        t = held_out[torch.as_tensor(np.isin(test.labels, members))]
        if min(len(r), len(s)) < 4:
            per[name] = {"auc": None, "skipped": f"{len(r)} real and {len(s)} synthetic images; needs 4 of each"}
            continue
        per[name] = probe_separability(r, s, seed=seed, device=device)
        floor = probe_separability(r, t, seed=seed, device=device) if len(t) >= 4 else None
        per[name]["floor"] = None if floor is None else floor["auc"]
        per[name]["floor_n"] = None if floor is None else floor["n_real"]
    aucs = {k: v["auc"] for k, v in per.items() if v["auc"] is not None}
    floors = [v["floor"] for v in per.values() if v.get("floor") is not None]
    report["separability"] = {
        "per_class": per,
        "mean": float(np.mean(list(aucs.values()))) if aucs else None,
        "floor_mean": float(np.mean(floors)) if floors else None,
        "max_class": max(aucs, key=aucs.get) if aucs else None,
        "method": "ROC AUC of a small CNN trained on half of a class's real TRAINING and synthetic images, "
                  "scored on the other halves (then swapped); 0.5 = indistinguishable, 1.0 = always told "
                  "apart (a shortcut a classifier trained on the mix can learn); floor = the same probe "
                  "between the class's real TRAIN and real TEST images",
    }
    if aucs:
        report["overall"]["separability"] = _pair({"mean": report["separability"]["mean"], "over": "classes"},
                                                  {"mean": report["separability"]["floor_mean"], "over": "classes"})
    for name, v in per.items():
        if name in report.get("per_class", {}):
            report["per_class"][name]["separability"] = v


def _jsonable(obj: Any) -> Any:
    """Round floats, turn NaN into None, tuples into lists: plain JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return None if not math.isfinite(v) else round(v, 6)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def summary_table(report: dict[str, Any]) -> str:
    """A markdown table of the overall figures beside their floors, for cards and terminals."""
    rows = ["| metric | synthetic | real floor |", "| --- | --- | --- |"]
    for key, val in report["overall"].items():
        if not isinstance(val, dict) or "value" not in val:
            continue
        a, b = val["value"], val["floor"]
        if isinstance(a, dict):
            a, b = a.get("mean"), (b or {}).get("mean")
        rows.append(f"| {key} | {_fmt(a)} | {_fmt(b)} |")
    mem = report["overall"].get("memorisation", {})
    for space in ("pixel", "feature"):
        if space in mem:
            m = mem[space]
            rows.append(f"| nearest-train distance ({space}, median) | {_fmt(m['median_nn_distance'])} | "
                        f"{_fmt(m['floor']['median_nn_distance'])} |")
            rows.append(f"| near-copies flagged ({space}) | {m['flagged']} ({_fmt(100 * m['flagged_fraction'])}%) | "
                        f"{_fmt(100 * m['floor']['flagged_fraction'])}% of real test |")
    return "\n".join(rows)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
