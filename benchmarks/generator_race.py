"""Which generator makes the best basophils for the same CPU time? A race on the PBC hard setting.

Every candidate trains on the efficacy harness's own hard-setting rows (benchmarks/efficacy.py's
``hard_rows``: the PBC training split with basophils cut to 19) for the same budgets of process
CPU time (``time.process_time``: every thread's time, training only, evaluation excluded), at
each size and with fixed seeds. A candidate with a parent (``sngan-finetune``) spends
``--parent-minutes`` of every budget on the parent, once, and the rest on the child; its rows
say so. After each budget the EMA generator is scored per class against the 'val' rows of
../shared/data/pbc_bloodcell_64_eval.npz (150 real images per class that no generator trains
on) in the bundled pbc-domain-cnn features: FID, KID, precision, recall and coverage, plus the share of
synthetic basophils that are pixel near-copies of the 19 kept ones (closer to one than 99% of
real val basophils are). At 32 px the real images go through the same 64 -> 32 px resize, so
both sides lose the same detail. A "real" row (test vs val images, 150 each) is the floor.
Reference rows, scored without training (``--references``): the training images themselves in
their eight flips and turns (what flipping the 19 basophils already offers) and published models
such as pbc-hard-cwgan-gp (the target of issue 23's first goal).

The run folder keeps everything: results.jsonl (one row per size, candidate, budget and seed;
rows already there are skipped), each candidate's run (checkpoint, continued between budgets)
and its model after each budget (``<size>px/<candidate>/budget_<B>``), race.md (the table) and
race_<size>px.png (FID against CPU minutes, basophil and the mean of the classes) and
race_<size>px_basophils_<B>min.png (basophils of every candidate at budget B beside real ones). Ctrl-C keeps
the last finished chunk; run the same command to continue.

    python benchmarks/generator_race.py --out runs/race
    python benchmarks/generator_race.py --out runs/race --budgets 10,20 --candidates sngan,cwgan-gp --sizes 32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from efficacy import DATA, MINORITY, hard_rows  # noqa: E402  benchmarks/efficacy.py: the hard setting

import gan_augment as ga  # noqa: E402
from gan_augment.core.serialization import atomic_write_text  # noqa: E402

EVAL_DATA = DATA.parent / "pbc_bloodcell_64_eval.npz"
DA = "color,translation,cutout"
TRAINING_IMAGES = "training-images"  # a reference row: the data itself, see Judge.score_training_images
COMMON = {"batch_size": 32, "ema_decay": 0.999, "precision": "fp32", "diffaugment": DA}


@dataclass(frozen=True)
class Candidate:
    """A backend with its settings; ``parent``: a first stage (backend, model config) that this
    candidate fine-tunes from with ``init_from`` (the trainer settings in ``train`` apply to both)."""

    backend: str
    config: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    parent: tuple[str, dict[str, Any]] | None = None
    note: str = ""


def candidates(freeze_d: int) -> dict[str, Candidate]:
    return {
        "cwgan-gp": Candidate("cwgan-gp", note="today's best: DCGAN layout, WGAN-GP, n_critic 5"),
        "cwgan-gp-noda": Candidate("cwgan-gp", train={"diffaugment": "none"}, note="DiffAugment off"),
        "cwgan-gp-bf16": Candidate("cwgan-gp", train={"precision": "bf16"}, note="bf16 autocast"),
        "bagan-gp": Candidate("bagan-gp", note="autoencoder stage (ae_steps 1000) inside the budget"),
        "sngan": Candidate("sngan", note="from scratch, n_critic 2"),
        "sngan-n1": Candidate("sngan", train={"n_critic": 1}, note="one discriminator step per generator step"),
        "sngan-noda": Candidate("sngan", train={"diffaugment": "none"}, note="DiffAugment off"),
        "sngan-bf16": Candidate("sngan", train={"precision": "bf16"}, note="bf16 autocast"),
        "sngan-cb0.5": Candidate("sngan", train={"class_balance": 0.5},
                                 note="class_balance 0.5: class shares go as sqrt(count)"),
        "sngan-cb1": Candidate("sngan", train={"class_balance": 1.0}, note="class_balance 1: classes equally often"),
        "sngan-utlo": Candidate("sngan", config={"shared_blocks": -1}, note="coarse half of G class-free"),
        "sngan-finetune": Candidate("sngan", train={"freeze_d": freeze_d}, parent=("sngan-uncond", {}),
                                    note=f"from an all-classes sngan-uncond parent, FreezeD {freeze_d}"),
        "sngan-finetune-cb1": Candidate("sngan", train={"freeze_d": freeze_d, "class_balance": 1.0},
                                        parent=("sngan-uncond", {}),
                                        note="sngan-finetune with class_balance 1 in the child only"),
    }


# ---- data and scoring -------------------------------------------------------------------------
def load_sets(data: Path, eval_data: Path) -> tuple[ga.ImageDataset, ga.ImageDataset, ga.ImageDataset]:
    """(hard-setting training rows, eval 'val' rows, eval 'test' rows for the real floor)."""
    train = ga.load_dataset(data, split="train")
    return train.subset(hard_rows(train)), ga.load_dataset(eval_data, split="val"), ga.load_dataset(eval_data, split="test")


def at_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or [0, 1] images as float [0, 1] at ``size`` px (antialiased bilinear)."""
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x


def class_scores(real_f: torch.Tensor, fake_f: torch.Tensor) -> dict[str, float]:
    """FID, KID, precision/recall (k=3) and coverage (k=5: the share of real images with a fake
    one among their neighbours; unlike recall it does not shrink when fakes repeat each other)."""
    from gan_augment.eval.metrics import (
        density_coverage,
        fid_from_features,
        kid_from_features,
        precision_recall,
    )

    kid = kid_from_features(real_f, fake_f, subset_size=min(100, len(real_f), len(fake_f)), subsets=50)
    return {"fid": fid_from_features(real_f, fake_f), "kid": kid["mean"], **precision_recall(real_f, fake_f),
            "coverage": density_coverage(real_f, fake_f)["coverage"]}


class Judge:
    """Scores generators of one size against the val rows, in the extractor's features."""

    def __init__(self, train: ga.ImageDataset, val: ga.ImageDataset, test: ga.ImageDataset, size: int,
                 fakes: int, extractor: str = "pbc-domain-cnn"):
        from gan_augment.eval.extractors import load_extractor

        self.ext, self.size, self.fakes = load_extractor(extractor), size, fakes
        self.names = list(train.class_names)
        self.val_x = at_size(val.tensor(), size)
        self.val_y = np.asarray(val.labels)
        self.val_f, _ = self.ext.extract(self.val_x)
        b = self.names.index(MINORITY)
        self.kept = at_size(train.tensor()[np.asarray(train.labels) == b], size)
        self.kept_f, _ = self.ext.extract(self.kept)
        test_x, test_y = at_size(test.tensor(), size), np.asarray(test.labels)
        test_f, _ = self.ext.extract(test_x)
        self.floor = self._per_class(lambda c: test_f[test_y == c][: int((self.val_y == c).sum())])

    def _per_class(self, fake_features) -> dict[str, dict[str, float]]:
        return {name: class_scores(self.val_f[self.val_y == c], fake_features(c)) for c, name in enumerate(self.names)}

    def score(self, model) -> dict[str, Any]:
        """A generator's ``--fakes`` images per class, seeded per class; classes by name, so a
        published model with the same classes in another order is scored the same way."""
        images = {}
        for c, name in enumerate(self.names):
            g = torch.Generator().manual_seed(1000 + c)
            images[c] = model.sample(self.fakes, labels=name, generator=g)
        return self.score_images(images)

    def score_training_images(self, train: ga.ImageDataset) -> dict[str, Any]:
        """The training images themselves in the eight flips and quarter turns, the first
        ``--fakes`` per class (19 basophils give 152): how close the data a generator learns from is to
        the 'val' images. A generator that beats this on a class offers more than flipping."""
        x, y = train.tensor(), np.asarray(train.labels)
        images = {}
        for c in range(len(self.names)):
            own = x[y == c]
            turns = torch.cat([torch.rot90(v, k, dims=(-2, -1)) for v in (own, own.flip(-1)) for k in range(4)])
            images[c] = turns[: self.fakes]  # every image unturned first: a large class needs no turns
        return self.score_images(images)

    def score_images(self, images: dict[int, torch.Tensor]) -> dict[str, Any]:
        from gan_augment.eval.metrics import memorisation_check

        fakes = {}
        for c, x in images.items():
            x = at_size(x, self.size)
            fakes[c] = (x, self.ext.extract(x)[0])
        per_class = self._per_class(lambda c: fakes[c][1])
        b = self.names.index(MINORITY)
        val_b = self.val_x[self.val_y == b]
        mem = memorisation_check(fakes[b][1], fakes[b][0], self.kept_f, self.kept, self.val_f[self.val_y == b], val_b)
        return {"per_class": per_class, "near_copy_rate": mem["pixel"]["flagged_fraction"],
                "near_copy_floor": mem["pixel"]["floor"]["flagged_fraction"]}


def summarise(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    out = {}
    for metric in ("fid", "kid", "precision", "recall", "coverage"):
        out[f"basophil_{metric}"] = per_class[MINORITY][metric]
        out[f"mean_{metric}"] = float(np.mean([v[metric] for v in per_class.values()]))
    return out


def score_fields(scores: dict[str, Any]) -> dict[str, Any]:
    """The fields of a results row that come from one ``Judge.score*`` call."""
    return {"near_copy_rate": scores["near_copy_rate"], "near_copy_floor": scores["near_copy_floor"],
            **summarise(scores["per_class"]), "per_class": scores["per_class"]}


def score_reference(judge: Judge, ref: str, train: ga.ImageDataset) -> dict[str, Any]:
    """A reference row's scores: the training images, or a published model folder / short name."""
    return judge.score_training_images(train) if ref == TRAINING_IMAGES else judge.score(ga.from_pretrained(ref))


# ---- training to a CPU budget -----------------------------------------------------------------
class Stage:
    """One model trained in chunks until its run has spent a given CPU time; resumable."""

    MAX_STEPS = 10_000_000  # the trainer needs a total; schedules are constant, so it only bounds

    def __init__(self, folder: Path, backend: str, config: dict, train: dict, data: ga.ImageDataset,
                 chunk_seconds: float, progress: bool):
        self.folder, self.data, self.chunk_seconds, self.progress = folder, data, chunk_seconds, progress
        self.model = ga.create(backend, **config)
        self.train = train
        self.run = folder / "run"
        self.ledger = folder / "cpu.json"
        self.spent, self.step, self.rate = 0.0, 0, None
        if self.ledger.exists():
            led = json.loads(self.ledger.read_text())
            self.spent, self.step = led["cpu_seconds"], led["step"]
        if (self.run / ga.CHECKPOINT_NAME).exists():
            from gan_augment.training.checkpoint import read_trainer_state

            ckpt_step = int(read_trainer_state(self.run / ga.CHECKPOINT_NAME)["step"])
            if ckpt_step != self.step and self.step:  # stopped between checkpoint and ledger
                self.spent *= ckpt_step / self.step
            self.step = ckpt_step
            # load the run's weights: a budget already trained may still need scoring
            self.model.fit(data, steps=self.MAX_STEPS, stop_at=self.step, out_dir=str(self.run), resume=True,
                           progress=False, **train)

    def train_until(self, cpu_seconds: float, label: str) -> None:
        while self.spent < cpu_seconds:
            # the last chunk's rate: the first chunk also holds set-up and any prepare stage (BAGAN)
            per_step = self.rate or (self.spent / self.step if self.step else None)
            left = cpu_seconds - self.spent
            # round down: the last chunks shrink as the budget nears, so it overshoots by about a step
            n = 1 if per_step is None else max(1, int(min(left, self.chunk_seconds) / per_step))
            t0 = time.process_time()
            self.model.fit(self.data, steps=self.MAX_STEPS, stop_at=self.step + n, out_dir=str(self.run),
                           resume=(self.run / ga.CHECKPOINT_NAME).exists(), progress=False,
                           checkpoint_every=0, sample_every=0, **self.train)
            dt = time.process_time() - t0
            self.spent += dt
            self.step += n
            self.rate = dt / n
            self.ledger.write_text(json.dumps({"cpu_seconds": self.spent, "step": self.step}))
            if self.progress:
                print(f"  {label}: step {self.step}, {self.spent / 60:.2f} of {cpu_seconds / 60:.2f} CPU min",
                      file=sys.stderr, flush=True)


def race(args) -> list[dict[str, Any]]:
    torch.set_num_threads(args.threads)
    cands = candidates(args.freeze_d)
    unknown = [c for c in args.candidates if c not in cands]
    if unknown:
        raise SystemExit(f"unknown candidate {unknown[0]!r}; choose from {', '.join(cands)}.")
    train, val, test = load_sets(args.data, args.eval_data)
    print(f"training rows: {train.class_counts()}", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    rows = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    if args.rescore:
        rows = rescore(rows, out, train, val, test, args)
    done = {(r["size"], r["candidate"], r["budget"], r["seed"]) for r in rows}
    for size in args.sizes:
        judge = None
        if (size, "real", 0, 0) not in done:  # rows scored without training: seed 0 for every seed
            judge = Judge(train, val, test, size, args.fakes)
            rows.append(_record(results_path, {"size": size, "candidate": "real", "budget": 0, "seed": 0,
                                               "note": "test vs val images", **summarise(judge.floor)}))
        for ref in args.references:
            if (size, ref, 0, 0) in done:
                continue
            judge = judge or Judge(train, val, test, size, args.fakes)
            note = "the training images, flipped and turned" if ref == TRAINING_IMAGES else f"published model {ref}"
            rows.append(_record(results_path, {"size": size, "candidate": ref, "budget": 0, "seed": 0, "note": note,
                                               **score_fields(score_reference(judge, ref, train))}))
        for name in args.candidates:
            cand = cands[name]
            keyed = [b for b in args.budgets if (size, name, b, args.seed) not in done]
            if not keyed:
                continue
            judge = judge or Judge(train, val, test, size, args.fakes)
            folder = run_folder(out, size, name, args.seed)
            cfg = {"image_size": size, "width": args.width, "class_names": list(train.class_names), **cand.config}
            if cfg.get("shared_blocks") == -1:  # the coarse half of the generator's blocks
                cfg["shared_blocks"] = ga.nets.upsampling_plan(size)[1] // 2
            trn = {**COMMON, "seed": args.seed, **cand.train}
            parent_stage = None
            if cand.parent is not None:
                p_backend, p_cfg = cand.parent
                child_only = ("freeze_d", "init_from", "new_class_init", "class_balance")
                p_train = {k: v for k, v in trn.items() if k not in child_only}
                parent_stage = Stage(folder / "parent", p_backend,
                                     {"image_size": size, "width": args.width, **p_cfg}, p_train, train,
                                     args.chunk_seconds, args.progress)
                parent_stage.train_until(args.parent_minutes * 60, f"{size}px {name} parent")
                trn = {**trn, "init_from": str(parent_stage.run)}
            stage = Stage(folder, cand.backend, cfg, trn, train, args.chunk_seconds, args.progress)
            for budget in sorted(keyed):
                own = budget * 60 - (parent_stage.spent if parent_stage else 0.0)
                if own <= 0:
                    raise SystemExit(f"--parent-minutes {args.parent_minutes} leaves nothing of budget {budget} "
                                     "for the child; lower it below the smallest budget.")
                t0 = time.perf_counter()
                stage.train_until(own, f"{size}px {name}")
                stage.model.save_pretrained(folder / f"budget_{budget:g}", card=False)
                scores = judge.score(stage.model)
                row = {"size": size, "candidate": name, "budget": budget, "seed": args.seed, "note": cand.note,
                       "steps": stage.step, "cpu_min": round((stage.spent + (parent_stage.spent if parent_stage else 0)) / 60, 2),
                       "parent_cpu_min": round(parent_stage.spent / 60, 2) if parent_stage else 0.0,
                       "parent_steps": parent_stage.step if parent_stage else 0,
                       "wall_s_last_budget": round(time.perf_counter() - t0, 1), **score_fields(scores)}
                rows.append(_record(results_path, row))
                print(f"{size}px {name} @ {budget:g} CPU min: basophil FID {row['basophil_fid']:.2f}, "
                      f"mean FID {row['mean_fid']:.2f}, steps {row['steps']}", file=sys.stderr, flush=True)
        if judge is None:
            judge = Judge(train, val, test, size, args.fakes)
        raced = sorted(d.name for d in (out / f"{size}px").iterdir() if d.is_dir()) if (out / f"{size}px").exists() else []
        for budget in args.budgets:  # every candidate raced so far to this budget, not only today's
            draw_basophils(out, size, budget, raced, judge)
    write_report(rows, out)
    return rows


def draw_basophils(out: Path, size: int, budget: float, names: list[str], judge: Judge, n: int = 8) -> Path | None:
    """race_<size>px_basophils_<budget>min.png: n real 'val' basophils on top, then n from each
    candidate's model at that budget (same seed for all), one row each, to judge by eye."""
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    models = [(name, out / f"{size}px" / name / f"budget_{budget:g}") for name in names]
    models = [(name, folder) for name, folder in models if (folder / "config.json").exists()]
    if not models:
        return None
    b = judge.names.index(MINORITY)
    rows = [("real 'val'", judge.val_x[judge.val_y == b][:n])]
    for name, folder in models:
        x = ga.from_pretrained(str(folder)).sample(n, labels=MINORITY, generator=torch.Generator().manual_seed(7))
        rows.append((name, at_size(x, size)))
    grid = make_grid(torch.cat([x for _, x in rows]), nrow=n, padding=2, pad_value=1.0)
    label_w, pitch = 130, size + 2
    sheet = Image.new("RGB", (label_w + grid.shape[-1], grid.shape[-2]), "white")
    sheet.paste(Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)), (label_w, 0))
    draw = ImageDraw.Draw(sheet)
    for i, (name, _) in enumerate(rows):
        draw.text((4, 2 + i * pitch + size // 2 - 6), name, fill="black")
    path = out / f"race_{size}px_basophils_{budget:g}min.png"
    sheet.save(path)
    return path


def run_folder(out: Path, size: int, name: str, seed: int) -> Path:
    """A candidate's folder: ``<size>px/<name>`` for seed 0 (as the first races stored it), else
    ``<size>px/<name>-seed<seed>``."""
    return out / f"{size}px" / (name if seed == 0 else f"{name}-seed{seed}")


def rescore(rows: list[dict], out: Path, train, val, test, args) -> list[dict]:
    """Score again, with today's metrics, every row that lacks one (e.g. coverage, added later):
    the real floor, the references and each saved budget model, sampled with the same seeds.
    Training figures (steps, CPU minutes) stay; results.jsonl is rewritten whole, atomically."""
    judges: dict[int, Judge] = {}
    fresh = []
    for r in rows:
        if "basophil_coverage" in r:
            fresh.append(r)
            continue
        if r["size"] not in judges:
            judges[r["size"]] = Judge(train, val, test, r["size"], args.fakes)
        judge = judges[r["size"]]
        if r["candidate"] == "real":
            fresh.append({**r, **summarise(judge.floor)})
            continue
        if r["budget"] == 0:
            scores = score_reference(judge, r["candidate"], train)
        else:
            folder = run_folder(out, r["size"], r["candidate"], r["seed"]) / f"budget_{r['budget']:g}"
            if not (folder / "config.json").exists():
                fresh.append(r)
                continue
            scores = judge.score(ga.from_pretrained(str(folder)))
        fresh.append({**r, **score_fields(scores)})
        print(f"rescored {r['size']}px {r['candidate']} @ {r['budget']:g}", file=sys.stderr, flush=True)
    atomic_write_text(out / "results.jsonl", "".join(json.dumps(r) + "\n" for r in fresh))
    return fresh


def _record(path: Path, row: dict) -> dict:
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    return row


COLUMNS = (("size", "{}"), ("candidate", "{}"), ("seed", "{}"), ("budget", "{:g}"), ("cpu_min", "{:.2f}"),
           ("parent_cpu_min", "{:.2f}"), ("steps", "{}"),
           ("basophil_fid", "{:.2f}"), ("mean_fid", "{:.2f}"), ("basophil_kid", "{:.4f}"), ("mean_kid", "{:.4f}"),
           ("basophil_precision", "{:.2f}"), ("basophil_recall", "{:.2f}"), ("basophil_coverage", "{:.2f}"),
           ("mean_precision", "{:.2f}"), ("mean_recall", "{:.2f}"), ("mean_coverage", "{:.2f}"), ("near_copy_rate", "{:.3f}"), ("near_copy_floor", "{:.3f}"))


def table(rows: list[dict]) -> str:
    """The results as a Markdown table, one row per size, candidate and budget."""
    head = "| " + " | ".join(c for c, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for r in sorted(rows, key=lambda r: (r["size"], r["budget"] > 0, r["candidate"] != "real", r["candidate"],
                                         r["budget"], r["seed"])):
        lines.append("| " + " | ".join(fmt.format(r[c]) if r.get(c) is not None else "" for c, fmt in COLUMNS) + " |")
    return "\n".join(lines)


SEED_METRICS = ("basophil_fid", "mean_fid", "basophil_precision", "basophil_coverage", "mean_coverage")


def seed_table(rows: list[dict]) -> str:
    """Mean and range over seeds per size, candidate and budget: one run's basophil FID moves a
    lot between seeds, so a choice between candidates reads this table, not single rows."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["budget"] > 0:
            groups.setdefault((r["size"], r["candidate"], r["budget"]), []).append(r)
    head = "| size | candidate | budget | seeds | " + " | ".join(f"{m} mean [min, max]" for m in SEED_METRICS) + " |"
    lines = [head, "|" + "---|" * (4 + len(SEED_METRICS))]
    for (size, name, budget), rs in sorted(groups.items()):
        cells = []
        for m in SEED_METRICS:
            v = [r[m] for r in rs if r.get(m) is not None]
            cells.append(f"{np.mean(v):.2f} [{min(v):.2f}, {max(v):.2f}]" if v else "")
        lines.append(f"| {size} | {name} | {budget:g} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = table(rows)
    print(text)
    notes = sorted({(r["candidate"], r.get("note", "")) for r in rows})
    legend = "\n".join(f"- `{name}`: {note}" for name, note in notes)
    (out / "race.md").write_text("# Generator race (PBC hard setting)\n\nBudgets are process CPU minutes of "
                                 "training (parent included); FID/KID/precision/recall per class against the "
                                 "eval 'val' rows in pbc-domain-cnn features.\n\n" + text + "\n\n## Over seeds\n\n"
                                 + seed_table(rows) + "\n\n" + legend + "\n")
    for size in sorted({r["size"] for r in rows}):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, metric, title in ((axes[0], "basophil_fid", "basophil"), (axes[1], "mean_fid", "mean of the classes")):
            trained = {(r["candidate"], r["seed"]) for r in rows if r["size"] == size and r["budget"] > 0}
            for name, seed in sorted(trained):
                pts = sorted((r["cpu_min"], r[metric]) for r in rows
                             if r["size"] == size and r["candidate"] == name and r["seed"] == seed)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        label=name if seed == 0 else f"{name} (seed {seed})")
            styles = iter(("--", ":", "-."))
            for r in rows:  # rows scored without training: horizontal lines
                if r["size"] == size and r["budget"] == 0:
                    label = "real vs real" if r["candidate"] == "real" else r["candidate"]
                    ax.axhline(r[metric], color="grey", linestyle=next(styles, ":"), label=label)
            ax.set_yscale("log")
            ax.set(title=f"{title}, {size} px", xlabel="CPU minutes (training, parent included)",
                   ylabel="domain FID (val)")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"race_{size}px.png", dpi=110)
        plt.close(fig)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budgets", default="10,20,40,80", help="CPU minutes, comma-separated (cumulative)")
    p.add_argument("--candidates", default=",".join(candidates(1)), help="comma-separated")
    p.add_argument("--sizes", default="32,64", help="comma-separated pixel sizes")
    p.add_argument("--references", default=f"{TRAINING_IMAGES},pbc-hard-cwgan-gp",
                   help="rows scored without training: model folders or short names, and "
                        f"{TRAINING_IMAGES!r} (the training images, flipped and turned); comma-separated, '' for none")
    p.add_argument("--width", type=int, default=16, help="every candidate's width")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fakes", type=int, default=300, help="synthetic images per class per score")
    p.add_argument("--parent-minutes", type=float, default=5.0, help="CPU minutes of sngan-finetune's parent")
    p.add_argument("--freeze-d", type=int, default=1, help="sngan-finetune's FreezeD blocks")
    p.add_argument("--chunk-seconds", type=float, default=60.0, help="CPU seconds between checkpoints")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--eval-data", type=Path, default=EVAL_DATA)
    p.add_argument("--rescore", action="store_true",
                   help="first score again every stored row that lacks a metric added since (saved models only)")
    p.add_argument("--quiet", dest="progress", action="store_false")
    args = p.parse_args(argv)
    args.budgets = [float(b) for b in args.budgets.split(",")]
    args.candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.references = [r.strip() for r in args.references.split(",") if r.strip()]
    return args


def main(argv=None) -> int:
    args = parse(argv)
    try:
        race(args)
    except KeyboardInterrupt:
        print("interrupted: finished chunks and scores are kept; run the same command to continue.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
