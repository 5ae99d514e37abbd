"""`gan-augment efficacy`: do synthetic images help my classifier more than duplicating real ones?"""

from __future__ import annotations

import shlex

from gan_augment.cli.args import count
from gan_augment.core.errors import ConfigError


def _cuts(pairs: list[str] | None) -> dict[str, int] | None:
    """--cut CLASS=N pairs -> {class: N} (a class given twice: the last one)."""
    return {k: v[-1] for k, v in _cut_lists(pairs).items()} or None


def _cut_lists(pairs: list[str] | None) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for p in pairs or []:
        name, sep, n = p.rpartition("=")
        if not sep or not name or not n.strip().isdigit():
            raise ConfigError(f"--cut expects CLASS=N (images of CLASS to keep), got {p!r}.")
        out.setdefault(name, []).append(int(n))
    return out


def _cuts_and_sweep(pairs: list[str] | None) -> tuple[dict[str, int] | None, dict[str, list[int]] | None]:
    """Fixed cuts, and the one class given several sizes (a sweep), if any."""
    lists = _cut_lists(pairs)
    swept = {k: v for k, v in lists.items() if len(v) > 1}
    if len(swept) > 1:
        raise ConfigError(f"--cut gives several sizes for {', '.join(swept)}; a sweep varies one class "
                          "(repeat --cut for that class only).")
    for k, v in swept.items():
        if len(set(v)) != len(v):
            raise ConfigError(f"--cut {k}= repeats a size ({v}); give each size once.")
    fixed = {k: v[0] for k, v in lists.items() if len(v) == 1}
    return fixed or None, swept or None


def _ratio(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--ratio expects a number in [0, 1] or 'none', got {text!r}.") from None


def _synthetic_epochs(text: str) -> int | None:
    if text.lower() == "none":
        return None
    if not text.strip().isdigit():
        raise ConfigError(f"--synthetic-epochs expects a number of epochs >= 1 or 'none', got {text!r}.")
    return int(text)


def _share(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--replace expects a share in [0, 1], got {text!r}.") from None


def cmd_efficacy(args) -> int:
    from gan_augment.eval.efficacy import ARMS, efficacy, efficacy_sweep

    cut, sweep = _cuts_and_sweep(args.cut)
    kwargs = dict(
        split_train=args.split_train, split_test=args.split_test, split_val=args.split_val,
        test=args.test_data, val=args.val_data, cut=cut, max_train_per_class=args.max_train_per_class,
        model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, precision=args.precision,
        seeds=args.seeds, allow_few_seeds=args.allow_few_seeds,
        ratios=[_ratio(r) for r in args.ratio] if args.ratio else 0.5,
        strategies=args.strategy or "not majority", filters=args.filter, filter_steps=args.filter_steps,
        replaces=[_share(p) for p in args.replace] if args.replace else 0.0,
        synthetic_epochs=[_synthetic_epochs(e) for e in args.synthetic_epochs] if args.synthetic_epochs else None,
        val_fraction=args.val_fraction, selection_seeds=args.selection_seeds, criterion=args.criterion,
        minority=args.minority, arms=args.arm or ARMS, image_size=args.image_size, device=args.device,
        num_workers=args.workers, out=args.out, setting=args.setting, progress=not args.quiet,
        command=_command(args))
    if sweep:
        res = efficacy_sweep(args.data, args.generator, sweep=sweep, **kwargs)
        for p in res["points"]:
            g = p["gain_over_dup"]
            arms = ", ".join(f"{a} {_signed(iv['balanced_accuracy'])}" for a, iv in g.items())
            print(f"{res['class']} {p['train_count']} training images: balanced accuracy gain over real+dup: {arms}")
    else:
        res = efficacy(args.data, args.generator, **kwargs)
        for line in _verdicts(res):
            print(line)
    print(f"report:  {res['paths']['report']}")
    print(f"results: {res['paths']['results']}")
    return 0


def _signed(iv: dict) -> str:
    from gan_augment.eval.efficacy.report import fmt

    return fmt(iv, signed=True)


def _command(args) -> str:
    """The command with every flag as parsed (defaults included), so it reruns exactly."""
    parts = ["gan-augment", "efficacy"]
    for key, val in vars(args).items():
        if key in ("func", "command") or val is None or val is False:
            continue
        flag = "--" + key.replace("_", "-")
        for v in val if isinstance(val, list) else [val]:
            parts += [flag] if v is True else [flag, str(v)]
    return shlex.join(parts)


def _verdicts(res: dict) -> list[str]:
    from gan_augment.eval.efficacy.report import verdict

    return [v.replace("**", "").replace("`", "") for v in verdict(res)]


def add_commands(sub) -> None:
    e = sub.add_parser("efficacy", help="train a timm classifier on real, classic, duplicated and synthetic "
                                        "arms over seeds; report intervals and paired differences")
    e.add_argument("--data", required=True, help=".npz, ImageFolder or .csv with train and test splits")
    e.add_argument("--split-train", default="train")
    e.add_argument("--split-test", default="test")
    e.add_argument("--split-val", default="val", help="the split --val-data is read with (default: val)")
    e.add_argument("--val-data", default=None, metavar="FILE",
                   help="take the validation images (every choice) from FILE's --split-val rows instead of a "
                        "carve of the training split, e.g. ../shared/data/pbc_bloodcell_64_eval.npz")
    e.add_argument("--test-data", default=None, metavar="FILE",
                   help="take the test images from FILE's --split-test rows instead of --data's")
    e.add_argument("--generator", action="append", required=True,
                   help="model folder, short name or Hub repo id; repeat to let validation choose")
    e.add_argument("--model", default="resnet18", help="timm model name (trained from scratch)")
    e.add_argument("--epochs", type=int, default=15)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--lr", type=float, default=1e-3)
    e.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto (default): bf16 where the hardware computes it natively, fp32 elsewhere")
    e.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (at least 5)")
    e.add_argument("--allow-few-seeds", action="store_true", help="allow fewer than 5 seeds (smoke tests)")
    e.add_argument("--ratio", action="append", metavar="R",
                   help="largest synthetic share of a class; repeat for candidates (default 0.5)")
    e.add_argument("--strategy", action="append", metavar="WORD",
                   help="SyntheticMix strategy (e.g. 'not majority', 'minority'); repeat for candidates")
    e.add_argument("--filter", action="append", metavar="WORD",
                   help="filter candidate: none, or agreement[:MIN_CONFIDENCE] (a classifier trained on the fit "
                        "rows); repeat to let validation choose")
    e.add_argument("--replace", action="append", metavar="P",
                   help="share of every class's real items served as synthetic images each pass, so looking "
                        "synthetic predicts no class (default 0: off); repeat for candidates")
    e.add_argument("--synthetic-epochs", action="append", metavar="E",
                   help="synthetic images in the first E passes over the data only, real ones after "
                        "(default none: every pass); repeat for candidates")
    e.add_argument("--filter-steps", type=count, default=400, help="training steps of the agreement classifier")
    e.add_argument("--arm", action="append", metavar="ARM",
                   help="arms to train (default: all seven); repeat. real, real+classic, real+balanced-loss, "
                        "real+dup, real+classic+dup, real+synthetic, real+classic+synthetic")
    e.add_argument("--criterion", default="balanced_accuracy",
                   help="validation metric that picks the candidate: balanced_accuracy, accuracy, macro_f1, "
                        "recall (of --minority) or recall:CLASS")
    e.add_argument("--minority", default=None, metavar="CLASS", help="class whose recall is a headline metric")
    e.add_argument("--cut", action="append", metavar="CLASS=N",
                   help="keep only N training images of CLASS (seeded), e.g. the hard setting; repeatable. "
                        "One class given several sizes is a sweep: one run per size, and a chart of each "
                        "arm's gain over duplication against that class's training count")
    e.add_argument("--max-train-per-class", type=int, default=None, metavar="N",
                   help="cut every class to at most N training images (smoke runs)")
    e.add_argument("--val-fraction", type=float, default=0.15)
    e.add_argument("--selection-seeds", type=int, default=2)
    e.add_argument("--image-size", type=int, default=None, help="resize to N x N (default: the data's own)")
    e.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    e.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    e.add_argument("--setting", default=None, help="a name for this setting in the report")
    e.add_argument("--out", required=True, help="folder for runs/, results.json, report.md, efficacy.png")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_efficacy)
