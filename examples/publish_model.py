"""Turn a training run into a published model folder: measure it, write its card, list it in hub/.

The metrics (domain-feature FID and KID, the domain Inception-Score analogue, MS-SSIM diversity,
precision/recall, density/coverage and the nearest-neighbour memorisation check) are measured
against HELD-OUT real images and printed beside their real-versus-real floor, then written into
config.json and the model card. Only generator weights are published.

    python examples/publish_model.py runs/neutrophil-wgan-gp hub/neutrophil-wgan-gp \
        --data ../shared/data/pbc_neutrophil_64.npz --short-name neutrophil-wgan-gp \
        --repo-id gan-augment/neutrophil-wgan-gp

A generator trained on a cut training split (the PBC hard setting keeps 19 basophils) is measured
against that same cut (``--cut basophil=19``, the rows ``gan-augment efficacy --cut`` keeps), so the
memorisation check and the floors use the images it could have seen, never the removed ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import gan_augment as ga
from gan_augment import metrics
from gan_augment.cli.efficacy import _cuts
from gan_augment.eval.efficacy.data import cut_rows
from gan_augment.eval.extractors import load_extractor
from gan_augment.hub.index import add_to_index

ROOT = Path(__file__).resolve().parents[1]


def card_metrics(report: dict) -> dict:
    """{metric: {"value": synthetic, "floor": real train vs real test}} for the card's table."""
    out = {}
    for key, val in report["overall"].items():
        if isinstance(val, dict) and "value" in val:
            a, b = val["value"], val["floor"]
            if isinstance(a, dict):
                a, b = a.get("mean"), (b or {}).get("mean")
            out[key] = {"value": a, "floor": b}
    mem = report["overall"].get("memorisation", {})
    for space in ("pixel", "feature"):
        if space in mem:
            out[f"nn_distance_{space}_median"] = {"value": mem[space]["median_nn_distance"],
                                                  "floor": mem[space]["floor"]["median_nn_distance"]}
            out[f"near_copies_{space}_fraction"] = {"value": mem[space]["flagged_fraction"],
                                                    "floor": mem[space]["floor"]["flagged_fraction"]}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a training run folder (gan-augment train --out)")
    p.add_argument("dest", help="the published folder, e.g. hub/neutrophil-wgan-gp")
    p.add_argument("--data", required=True)
    p.add_argument("--classes", default=None)
    p.add_argument("--extractor", default=str(ROOT / "hub" / "extractors" / "pbc-domain-cnn"))
    p.add_argument("-n", type=int, default=1000, help="synthetic images drawn for the metrics")
    p.add_argument("--short-name", default=None)
    p.add_argument("--repo-id", default=None)
    p.add_argument("--revision", default=None, help="commit of the pushed files; none = not pushed yet")
    p.add_argument("--cut", action="append", metavar="CLASS=N",
                   help="the generator saw only N training images of CLASS (seeded, as efficacy --cut); repeatable")
    p.add_argument("--command", default=None, help="the command that trained the generator, for the card")
    p.add_argument("--note", default="", help="extra text for the card (training budget, caveats)")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    classes = args.classes.split(",") if args.classes else None
    aug = ga.from_pretrained(args.run)
    train = ga.load_dataset(args.data, split="train", classes=classes)
    cuts = _cuts(args.cut)
    if cuts:
        train = train.subset(cut_rows(train.labels, train.class_names, cuts))
    test = ga.load_dataset(args.data, split="test", classes=classes)
    extractor = load_extractor(args.extractor)
    report = metrics.evaluate(aug, train, test, extractor, n=args.n, seed=0)
    table = metrics.summary_table(report)
    print(table)
    summary = aug.training_summary or {}
    tc = summary.get("train_config", {})
    budget = (f"Trained for {summary.get('steps')} generator steps (batch {summary.get('batch_size')}, "
              f"n_critic {tc.get('n_critic')}, lr_g {tc.get('lr_g')}, lr_d {tc.get('lr_d')}, betas "
              f"{tc.get('betas')}, EMA {tc.get('ema_decay')}) on {summary.get('images')} training images, "
              "on a 2-core CPU.")  # precision and DiffAugment: the card's Training data list (render_card)
    if args.command:
        budget += f"\n\nTrained with:\n\n```bash\n{args.command}\n```"
    extra = "\n".join([
        "## Metrics against held-out real images", "",
        f"Feature extractor: {report.get('extractor', {}).get('name', 'see config.json')} "
        "(no Inception weights are available offline, so FID/KID here are domain-feature figures, "
        "not comparable with Inception FIDs elsewhere). Each figure sits beside its floor: the same "
        f"metric between real training and real test images. {len(test)} held-out test images.", "",
        "How to read the table above: FID and KID (x1000 where the report says so) are distances "
        "between feature distributions, lower is better; precision (realism) and recall (coverage of "
        "the real variety), density and coverage are k-nearest-neighbour figures in feature space, "
        "higher is better, up to the floor; ms_ssim is the mean MS-SSIM between random pairs of images "
        "of one class, so a value well above the floor means too little variety (mode collapse); "
        "domain_is is an Inception-Score analogue from the domain classifier; nn_distance_* is the "
        "median distance of each image to its nearest real TRAINING image, and near_copies_* the share "
        "closer than the 1st percentile of real-test-to-train distances (memorisation check); "
        "separability is the mean over classes of the ROC AUC of a small CNN telling a class's synthetic "
        "images from its real training images on held-out halves: 0.5 means indistinguishable, near 1.0 "
        "means a classifier trained on the mix can learn 'looks synthetic' as a label cue.", "",
        "## Training budget", "", budget, "", args.note,
    ])
    dest = Path(args.dest)
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as tmp:
        staged = Path(tmp) / "model"
        aug.save_pretrained(staged, license="cc-by-4.0", datasets=["PBC peripheral blood cells (Acevedo et al. 2020)"],
                            metrics=card_metrics(report), extra=extra)
        (staged / "metrics.json").write_text(json.dumps(report, indent=1, default=str))
        if args.short_name:
            entry = add_to_index(staged, args.short_name, args.repo_id or f"gan-augment/{args.short_name}",
                                 args.revision, hub=ROOT / "hub", bundle=True, overwrite=True,
                                 description=f"{aug.name}, {aug.image_shape[1]}px, classes: {', '.join(aug.class_names)}")
            print(json.dumps(entry, indent=1))
            shutil.copyfile(staged / "metrics.json", ROOT / "hub" / args.short_name / "metrics.json")
        else:
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(staged, dest)
    print(f"published {args.run} -> {dest}")


if __name__ == "__main__":
    main()
