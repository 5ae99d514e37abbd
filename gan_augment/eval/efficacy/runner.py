"""``efficacy(...)``: do synthetic images help this classifier more than duplicating real ones?

Order of work, so the test split cannot leak into any choice:
1. open the training split, apply the subset; carve a stratified validation split from it, or
   (``val=``) take the validation images from another file's 'val' rows and fit on the whole split;
2. if there is more than one candidate (generator x ratio x strategy x filter x replace x
   synthetic epochs), train the
   ``real+synthetic`` arm on the fit rows for each candidate and pick the best by the criterion on
   the validation images;
3. only then open the test split (``test=``: another file's 'test' rows), train every arm on the
   whole training split (validation images included) for every seed, and score each once on it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.data import ImageDataset
from gan_augment.core.errors import ConfigError, DataError

from . import baselines, report, sources
from .arms import ArrayImages, synthetic_mix
from .baselines import ARMS, FREE_ARMS, PLANNED_ARMS
from .candidates import build_filters, choice_key, epoch_options, grid, parse_filter_word
from .data import (
    describe_source,
    open_split,
    rows_sha256,
    stratified_split,
    to_images,
    training_rows,
)
from .generators import resolve_generators
from .stats import metric_value, summarise, t_interval
from .store import FORMAT, RunStore, code_version, library_versions, write_json
from .timing import estimate_line, seconds_per_step_and_image, took_line
from .train import Recipe, check_recipe, fit_and_evaluate, resolve_device, steps_per_epoch

MIN_SEEDS = 5
#: the validation carve's defaults: a stratified share of the training split, and its seed
VAL_FRACTION, SPLIT_SEED = 0.15, 0
BASE_METRICS = ["accuracy", "balanced_accuracy", "macro_f1"]


def _as_list(v: Any, scalar_types: tuple) -> list:
    return list(v) if isinstance(v, (list, tuple)) and not isinstance(v, scalar_types) else [v]


def _seeds(seeds: int | Sequence[int], allow_few: bool) -> list[int]:
    out = list(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) else [int(s) for s in seeds]
    if len(set(out)) != len(out) or not out:
        raise ConfigError(f"seeds must be a count or distinct integers, got {seeds!r}.")
    if len(out) < MIN_SEEDS and not allow_few:
        raise ConfigError(f"{len(out)} seed(s) give intervals too wide to conclude anything; use at least "
                             f"{MIN_SEEDS} (seeds=5), or allow_few_seeds=True (--allow-few-seeds) for a smoke test.")
    return out


def _criterion(criterion: str, minority: str | None, class_names: list[str]) -> str:
    if criterion == "recall":
        if minority is None:
            raise ConfigError("criterion='recall' needs the class: minority='CLASS' or criterion='recall:CLASS'.")
        criterion = f"recall:{minority}"
    if criterion.startswith("recall:"):
        name = criterion.split(":", 1)[1]
        if name not in class_names:
            raise ConfigError(f"criterion {criterion!r}: no class {name!r}; classes: {', '.join(class_names)}.")
    elif criterion not in BASE_METRICS:
        raise ConfigError(f"criterion must be one of {', '.join(BASE_METRICS)} or 'recall:CLASS', got {criterion!r}.")
    return criterion


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, ImageDataset):  # not repr(): it counts labels, and the test split waits
        return f"<ImageDataset from {v.source}>"
    if isinstance(v, GenerativeAugmenter):
        return f"<{type(v).__name__} {v.name}>"
    if callable(v):
        return f"<callable {getattr(v, '__qualname__', type(v).__name__)}>"
    return repr(v)


def efficacy(data: str | Path | None = None, generators: Any = None, *, train: Any = None, test: Any = None,
             val: Any = None, split_train: str = "train", split_test: str = "test", split_val: str = "val",
             train_subset: Sequence[int] | Callable | None = None, cut: Mapping[str, int] | None = None,
             max_train_per_class: int | None = None, model: str = "resnet18", epochs: int = 15,
             batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.05, precision: str = "auto",
             seeds: int | Sequence[int] = 5, allow_few_seeds: bool = False,
             ratios: float | Sequence[float] = 0.5, strategies: Any = "not majority", filters: Sequence | None = None,
             replaces: float | Sequence[float] = 0.0, synthetic_epochs: int | None | Sequence = None,
             filter_steps: int = 400, val_fraction: float = VAL_FRACTION, split_seed: int = SPLIT_SEED,
             selection_seeds: int = 2, criterion: str = "balanced_accuracy", minority: str | None = None,
             arms: Sequence[str] = ARMS, image_size: int | None = None, device: str | None = None,
             num_workers: int = 0, out: str | Path = "efficacy-results", setting: str | None = None,
             progress: bool = True, verbose: bool = True, command: str | None = None) -> dict[str, Any]:
    """Train the same timm classifier (``pretrained=False``) on each arm and compare them on the test split.

    Arms (:data:`ARMS`): ``real``, ``real+classic``, ``real+balanced-loss`` (class-weighted
    cross-entropy), ``real+dup`` (the synthetic arm's per-class additions, as duplicates of real
    images), ``real+classic+dup``, ``real+synthetic``, ``real+classic+synthetic``. ``real+dup`` is
    the bar for ``real+synthetic`` and ``real+classic+dup`` for ``real+classic+synthetic``. Every
    arm trains for the same number of optimiser steps, ``epochs * ceil(n_real / batch_size)`` (see
    :mod:`gan_augment.eval.efficacy.train`). Choices among ``generators`` x ``ratios`` x
    ``strategies`` x ``filters`` are made on the validation images by ``criterion``
    (``balanced_accuracy``, ``accuracy``, ``macro_f1`` or ``recall:CLASS``); the test images are read
    only afterwards. Each finished run is stored at once under ``out/runs/`` keyed by its settings, so
    a rerun resumes; ``out/results.json``, ``out/report.md`` and ``out/efficacy.png`` hold the result.

    Args:
        data: a path ``load_dataset`` reads with ``split=split_train`` / ``split_test``; or pass
            ``train=`` and ``test=`` (ImageDatasets or paths) instead.
        test: the test images (a path read with ``split=split_test``, or an ImageDataset); with
            ``data`` it replaces data's own test split, e.g. a file with more minority images.
        val: validation images (a path read with ``split=split_val``, or an ImageDataset) instead
            of a ``val_fraction`` carve of the training split; candidates then fit on the whole split.
        generators: one or more GenerativeAugmenters, model folders or short names.
        train_subset: training rows to use, or ``callable(train_split) -> rows``.
        cut: ``{class: n}`` keeps n images of each named class (seeded), e.g. the "hard" setting.
        max_train_per_class: cut every class to at most this many (smoke runs).
        precision: ``"auto"`` (bf16 where the hardware computes it natively, else fp32; the
            trainer's rule), ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA).
        filters: candidate filters: ``SampleFilter`` objects, ``None``/``"none"`` (no filter) or
            ``"agreement[:MIN_CONFIDENCE]"`` (a classifier trained ``filter_steps`` steps on the fit rows).
        replaces: SyntheticMix ``replace`` shares to choose among (default 0.0: off): that share of
            every class's real items is served as synthetic each pass, so "looks synthetic" is no
            class cue.
        synthetic_epochs: SyntheticMix ``synthetic_epochs`` to choose among (default None: off);
            E: synthetic items in the first E passes over the arm's data, real ones after.
        minority: a class whose recall is reported as a headline metric.
        selection_seeds: seeds per candidate on the validation images (only with 2+ candidates).
        verbose: print the counts, the time estimate before the first run and the time taken.
    Returns the results dict written to ``out/results.json`` (plus ``"paths"``).
    """
    call = _jsonable({k: v for k, v in locals().items() if k not in ("command",)})
    t_start = time.perf_counter()
    seed_list = _seeds(seeds, allow_few_seeds)
    arms = list(arms)
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        raise ConfigError(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}.")
    if not isinstance(selection_seeds, int) or selection_seeds < 1:
        raise ConfigError(f"selection_seeds must be a positive integer, got {selection_seeds!r}.")
    if data is None and (train is None or test is None):
        raise ConfigError("give either data=PATH (with split_train/split_test) or both train= and test=.")
    if not isinstance(filter_steps, int) or isinstance(filter_steps, bool) or filter_steps < 1:
        raise ConfigError(f"filter_steps must be a positive integer, got {filter_steps!r}.")
    dev = resolve_device(device)
    used_precision, precision_info = sources.resolve(precision, dev)
    recipe = Recipe(model, epochs, batch_size, float(lr), float(weight_decay), used_precision, num_workers)
    check_recipe(recipe, dev)
    ratio_list = [None if r is None else float(r) for r in _as_list(ratios, (str,))]
    replace_list, epochs_list = epoch_options(replaces, synthetic_epochs)
    strategy_list = _as_list(strategies, (str,))
    if filters is not None and not list(filters):
        raise ConfigError("filters must be None or a non-empty list of candidates (None in it means no filter).")
    for f in filters or []:  # a misspelt filter word fails before any data is read
        if isinstance(f, str):
            parse_filter_word(f)
    say = _printer(verbose, progress)

    # 1. the training split, its subset and the validation images --------------------------------
    train_src = train if train is not None else data
    train_ds = open_split(train_src, split_train)
    rows = training_rows(train_ds, train_subset, cut, max_train_per_class)
    images = to_images(train_ds, image_size).take(rows)
    names = images.class_names
    size = int(images.images.shape[-1])
    crit = _criterion(criterion, minority, names)
    if minority is not None and minority not in names:
        raise ConfigError(f"minority {minority!r} is not a class; classes: {', '.join(names)}.")
    if val is None:
        fit_rows, val_rows = stratified_split(images.labels, val_fraction, split_seed)
        val_set = images.take(val_rows)
        val_from = f"a stratified {val_fraction:.0%} carve of the training split (split seed {split_seed})"
    else:
        fit_rows, val_rows = np.arange(len(images)), np.zeros(0, dtype=np.int64)
        val_set = sources.load_external(val, split_val, size, images, "validation split")
        val_from = f"{sources.describe(val)} {split_val!r} rows"
    fit_set = images.take(fit_rows)
    gens = resolve_generators(generators)
    for g in gens:
        g.augmenter.to(dev)
    labels = [g.label for g in gens]
    shas = [g.weights_sha256 for g in gens]
    filter_list = build_filters(filters, fit_set, split_seed, filter_steps, str(dev))
    candidates = grid(len(gens), ratio_list, strategy_list, filter_list, replace_list, epochs_list)
    for c in candidates:  # a class the generator cannot make fails here, before any training
        synthetic_mix(ArrayImages(images, None), gens[c.generator].augmenter, c, 0)
    say(f"training: {sources.counts_text(images.counts())}")
    say(f"validation: {sources.counts_text(val_set.counts())}, from {val_from}")

    store = RunStore(out)
    train_desc = (describe_source(train_src) if not isinstance(train_src, ImageDataset)
                  else {"path": f"in-memory ImageDataset ({train_src.source})", "sha256": images.sha256()})
    common = {"format": FORMAT, "code": code_version(), "versions": library_versions(),
              "data_sha256": train_desc["sha256"], "split_train": split_train, "train_rows": rows_sha256(rows),
              "classes": names, "image_size": size, "recipe": recipe.to_dict(), "device_type": dev.type}
    n_sel = len(candidates) * min(selection_seeds, len(seed_list)) if len(candidates) > 1 else 0
    from tqdm.auto import tqdm

    bar = tqdm(total=n_sel + len(seed_list) * len(arms), desc="efficacy runs", unit="run", disable=not progress)
    tally = {"trained": 0, "stored": 0}
    speed: list[tuple[float, float]] = []

    def announce(what: str, todo: list[tuple[int, int]], stored: int) -> None:
        """The time estimate for ``todo`` ((steps, images scored) per run), before the first of them."""
        if not todo or not verbose:
            return
        if not speed:
            speed.append(seconds_per_step_and_image(recipe, fit_set, len(names), dev))
        per_step, per_image = speed[0]
        line = estimate_line(len(todo), sum(t[0] for t in todo), sum(t[1] for t in todo), per_step, per_image,
                             stored, f"{recipe.precision} on {dev.type}")
        say(f"{what}: {line}")

    def run(settings: dict, dataset, n_real: int, eval_set, seed: int, desc: str) -> dict[str, Any]:
        found = store.get(settings)
        if found is None:
            found = fit_and_evaluate(dataset, eval_set.images, eval_set.labels, names, recipe, n_real, seed,
                                     dev, progress=progress, desc=desc)
            store.put(settings, found)
            tally["trained"] += 1
        else:
            bar.set_postfix_str("stored")
            tally["stored"] += 1
        bar.update(1)
        return found

    # 2. selection on the validation images ------------------------------------------------------
    selection: dict[str, Any] = {"criterion": crit, "val_fraction": val_fraction, "split_seed": split_seed,
                                 "val_source": val_from}
    if len(candidates) > 1:
        sel_seeds = seed_list[:selection_seeds]
        val_key = ({"val_rows": rows_sha256(val_rows)} if val is None
                   else {"val_sha256": val_set.sha256(), "split_val": split_val})

        def sel_settings(c, seed):
            return {**common, "phase": "selection", "fit_rows": rows_sha256(fit_rows), **val_key,
                    "arm": "real+synthetic", "seed": seed, "choice": choice_key(c, shas)}

        specs = [sel_settings(c, seed) for c in candidates for seed in sel_seeds]
        todo = [(epochs * steps_per_epoch(len(fit_set), batch_size), len(val_set))
                for st in specs if store.get(st) is None]
        announce("selection", todo, len(specs) - len(todo))
        scored, failed = [], {}
        for i, c in enumerate(candidates):
            vals = []
            try:
                for seed in sel_seeds:
                    ds, info = baselines.build("real+synthetic", fit_set, seed, gens[c.generator].augmenter, c)
                    res = run(sel_settings(c, seed), ds, len(fit_set), val_set, seed, f"select seed {seed}")
                    vals.append(metric_value(res, crit))
            except DataError as exc:  # e.g. a filter that rejects nearly every image of a class
                failed[i] = str(exc)
                say(f"candidate {i + 1} dropped: {exc}")
                vals = []
            scored.append((c, t_interval(vals)))
        viable = [i for i in range(len(scored)) if i not in failed]
        if not viable:
            raise DataError(f"every candidate failed on the fit rows; the first: {failed[0]}")
        best = max(viable, key=lambda i: (-math.inf if math.isnan(scored[i][1].mean) else scored[i][1].mean, -i))
        chosen = scored[best][0]
        selection.update(how=f"best {crit} over {len(sel_seeds)} seed(s) per candidate", seeds=sel_seeds,
                         scores=[{"choice": c.describe(labels), "score": iv.to_dict(),
                                  **({"failed": failed[i]} if i in failed else {})}
                                 for i, (c, iv) in enumerate(scored)])
    else:
        chosen = candidates[0]
        selection.update(how="one candidate: nothing to choose, no validation runs", seeds=[], scores=[])
    selection["chosen"] = chosen.describe(labels)

    # 3. the test images, read now that every choice is fixed -------------------------------------
    test_src = test if test is not None else data
    if test is not None and data is not None and train is None:
        test_images = sources.load_external(test, split_test, size, images, "test split")
    else:
        test_images = to_images(open_split(test_src, split_test), size)
        sources.check_like(test_images, names, int(images.images.shape[1]), "test split")
    test_sha = test_images.sha256()
    say(f"test: {sources.counts_text(test_images.counts())}, from {sources.describe(test_src)} "
        f"{split_test!r} rows, read after every choice")

    def final(arm: str, seed: int):
        gen = gens[chosen.generator].augmenter if arm in PLANNED_ARMS else None
        ds, info = baselines.build(arm, images, seed, gen, chosen if gen is not None else None)
        settings = {**common, "phase": "final", "test_sha256": test_sha, "split_test": split_test,
                    "arm": arm, "seed": seed}
        if arm in ("real+dup", "real+classic+dup"):
            settings["added"] = info["added"]
        elif arm in PLANNED_ARMS:
            settings["choice"] = choice_key(chosen, shas)
        if arm in FREE_ARMS:
            settings["arm_code"] = baselines.code_sha256()
        return ds, info, settings

    specs = [final(arm, seed)[2] for seed in seed_list for arm in arms]
    todo = [(epochs * steps_per_epoch(len(images), batch_size), len(test_images))
            for st in specs if store.get(st) is None]
    announce("final arms", todo, len(specs) - len(todo))
    runs = []
    added: dict[str, int] = {}
    for seed in seed_list:
        for arm in arms:
            ds, info, settings = final(arm, seed)
            if arm in PLANNED_ARMS:
                added = info["added"]
            res = run(settings, ds, len(images), test_images, seed, f"{arm} seed {seed}")
            entry = {"arm": arm, "seed": seed, "items": info["items"], "added": info["added"], "scores": res}
            if "class_weights" in info:
                entry["class_weights"] = info["class_weights"]
            runs.append(entry)
    bar.close()
    seconds = time.perf_counter() - t_start
    say(took_line(seconds, tally["trained"], tally["stored"]))

    # 4. results, report, chart ------------------------------------------------------------------
    metrics = BASE_METRICS + ([f"recall:{minority}"] if minority else [])
    headline = list(dict.fromkeys(["balanced_accuracy", crit] + ([f"recall:{minority}"] if minority else [])))
    results = {
        "format": FORMAT, "setting": setting,
        "invocation": {"command": command, "argv": list(sys.argv), "arguments": call},
        "versions": library_versions(), "code_version": code_version(),
        "data": {"train_source": train_desc,
                 "test_source": train_desc if test_src is train_src else sources.provenance(test_src, test_images),
                 "val_source": None if val is None else sources.provenance(val, val_set),
                 "split_train": split_train, "split_test": split_test,
                 "split_val": None if val is None else split_val, "class_names": names,
                 "train_rows": rows.tolist(), "fit_rows": fit_rows.tolist(), "val_rows": val_rows.tolist(),
                 "counts": {"train": images.counts(), "fit": fit_set.counts(),
                            "val": val_set.counts(), "test": test_images.counts()}},
        "protocol": {"recipe": recipe.to_dict(), "precision": precision_info,
                     "steps_per_epoch": steps_per_epoch(len(images), batch_size),
                     "total_steps": epochs * steps_per_epoch(len(images), batch_size), "seeds": seed_list,
                     "arms": arms, "image_size": size, "in_chans": int(images.images.shape[1]),
                     "num_classes": len(names), "device": str(dev),
                     "final_training_rows": "the whole training split (validation rows included)",
                     "bars": {a: b for a, b in baselines.BAR.items() if a in arms and b in arms}},
        "timing": {"seconds": round(seconds, 1), "trained": tally["trained"], "stored": tally["stored"]},
        "generators": [g.provenance for g in gens],
        "candidates": [c.describe(labels) for c in candidates],
        "selection": selection, "added_per_class": added, "headline": headline,
        "runs": runs, "summary": summarise(runs, arms, metrics),
        "recall_summary": summarise(runs, arms, [f"recall:{c}" for c in names], references=())["arms"],
    }
    out = Path(out)
    write_json(out / "results.json", results)
    md, png = report.write(results, out)
    results["paths"] = {"results": str(out / "results.json"), "report": str(md), "chart": str(png)}
    return results


def _printer(verbose: bool, progress: bool) -> Callable[[str], None]:
    """Lines for the user: through tqdm while bars are drawn (so they do not tear them)."""
    if not verbose:
        return lambda line: None
    if progress:
        from tqdm.auto import tqdm

        return lambda line: tqdm.write(line)
    return lambda line: print(line, flush=True)


__all__ = ["efficacy", "ARMS"]
