"""`gan-augment evaluate` and `gan-augment train-extractor`: sample quality against held-out images."""

from __future__ import annotations

import json
from pathlib import Path

from gan_augment.cli.args import count, device
from gan_augment.core.errors import ConfigError, DataError


def _split_dir_check(data: str, split: str, flag: str) -> None:
    """An ImageFolder without a <split>/ sub-folder would silently give the same images twice."""
    p = Path(data).expanduser()
    if p.is_dir() and not (p / split).is_dir():
        raise DataError(f"{data} has no {split}/ sub-folder for {flag} {split}; arrange it as DATA/train/<class>/..., DATA/test/<class>/... .")


def _classes(arg: str | None) -> list[str] | None:
    return [c.strip() for c in arg.split(",") if c.strip()] if arg else None


def cmd_evaluate(args) -> int:
    import gan_augment as ga
    from gan_augment.core.data import load_dataset
    from gan_augment.core.serialization import atomic_write_text
    from gan_augment.eval.evaluate import evaluate, summary_table

    if args.split == args.train_split:
        raise ConfigError(f"--split and --train-split are both {args.split!r}; the reference must be held-out images (e.g. --split test).")
    if args.n is not None and args.n < 2:
        raise ConfigError(f"-n must be at least 2, got {args.n}.")
    out = Path(args.out)
    if out.suffix != ".json":
        raise ConfigError(f"--out must end in .json, got {out.name!r}.")
    _split_dir_check(args.data, args.split, "--split")
    _split_dir_check(args.data, args.train_split, "--train-split")
    model = ga.from_pretrained(args.model)
    c, size, _ = model.image_shape
    train = load_dataset(args.data, split=args.train_split, image_size=size, channels=c)
    test = load_dataset(args.data, split=args.split, image_size=size, channels=c)
    if len(test) < 2:
        raise DataError(f"{args.data}: split {args.split!r} has {len(test)} images; need at least 2.")
    report = evaluate(model, train, test, extractor=args.extractor, per_class=not args.no_per_class,
                      n=args.n, seed=args.seed, classes=_classes(args.classes), device=args.device,
                      separability=not args.no_separability)
    report["data"] = {"path": str(args.data), "reference_split": args.split, "train_split": args.train_split}
    report["synthetic"]["source"] = str(args.model)
    atomic_write_text(out, json.dumps(report, indent=2, allow_nan=False) + "\n")
    print(f"features: {report['extractor']['name']} ({report['extractor']['kind']})")
    print(summary_table(report))
    for line in separability_lines(report):
        print(line)
    print(f"report: {out}")
    return 0


def separability_lines(report: dict) -> list[str]:
    """The shortcut probe per class, one line: AUC 0.5 = indistinguishable from real, 1.0 = told apart."""
    sep = report.get("separability")
    if not sep:
        return []
    parts = [f"{name} {v['auc']:.2f}" + (f" (floor {v['floor']:.2f})" if v.get("floor") is not None else "")
             for name, v in sep["per_class"].items() if v.get("auc") is not None]
    return ["separability (real vs synthetic ROC AUC of a small CNN on held-out halves; 0.5 = "
            "indistinguishable, 1.0 = a shortcut; floor = real train vs real test): " + ", ".join(parts)] if parts else []


def cmd_train_extractor(args) -> int:
    from gan_augment.core.data import load_dataset
    from gan_augment.eval.domain_cnn import train_domain_extractor

    train = load_dataset(args.data, split=args.split, image_size=args.image_size)
    test = None
    if args.test_split:
        if args.test_split == args.split:
            raise ConfigError("--test-split must differ from --split: accuracy on training images says nothing.")
        _split_dir_check(args.data, args.test_split, "--test-split")
        try:
            test = load_dataset(args.data, split=args.test_split, image_size=args.image_size)
        except DataError as exc:
            raise DataError(f"{exc} Or pass --test-split '' to hold out 10% of the training images.") from exc
    ext = train_domain_extractor(train, args.out, steps=args.steps, seed=args.seed, test_dataset=test,
                                 batch_size=args.batch_size, device=args.device, verbose=not args.quiet)
    info = ext.info
    print(f"{info['eval_split']} accuracy {info['test_accuracy']:.3f}, balanced {info['test_balanced_accuracy']:.3f} "
          f"on {info['n_eval']} images")
    print(f"extractor: {args.out}  (use: gan-augment evaluate --extractor {args.out} ...)")
    return 0


def add_commands(sub) -> None:
    e = sub.add_parser("evaluate", help="FID, KID, IS analogue, MS-SSIM, precision/recall and memorisation vs held-out images")
    e.add_argument("--model", required=True, help="model folder, short name or Hub repo id")
    e.add_argument("--data", required=True, help="real images: .npz, ImageFolder or .csv with a split")
    e.add_argument("--split", default="test", help="held-out reference split (default: test)")
    e.add_argument("--train-split", default="train", help="the generator's training split (floor and memorisation)")
    e.add_argument("--extractor", required=True,
                   help="feature extractor: a folder from train-extractor, a name in hub/extractors "
                        "(pbc-domain-cnn for PBC blood cells), 'inception' or 'inception:WEIGHTS.pth'")
    e.add_argument("--out", required=True, help="report.json")
    e.add_argument("-n", type=int, default=None, help="synthetic images to draw (default: as many as real train images)")
    e.add_argument("--classes", default=None, help="comma-separated classes to evaluate")
    e.add_argument("--no-per-class", action="store_true")
    e.add_argument("--no-separability", action="store_true",
                   help="skip the shortcut probe (a small CNN per class telling synthetic from real images)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:N or mps (default: the best available)")
    e.set_defaults(func=cmd_evaluate)

    t = sub.add_parser("train-extractor", help="train the offline domain feature extractor on real train images")
    t.add_argument("--data", required=True)
    t.add_argument("--split", default="train", help="training split (real images only)")
    t.add_argument("--test-split", default="test", help="held-out split for its accuracy ('' to hold out 10%% of train)")
    t.add_argument("--out", required=True, help="folder for config.json + model.safetensors")
    t.add_argument("--steps", type=count, default=1500)
    t.add_argument("--batch-size", type=count, default=64)
    t.add_argument("--image-size", type=count, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:N or mps (default: the best available)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train_extractor)
