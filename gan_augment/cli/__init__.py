"""The `gan-augment` command. Bad input gets one line naming the problem and the fix, exit 2."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from gan_augment.cli.args import OneLineParser, count, device, minutes, non_negative, positive
from gan_augment.core.errors import ConfigError, DataError, GanAugmentError, TrainingDiverged
from gan_augment.core.naming import did_you_mean
from gan_augment.training.interrupts import TrainingInterrupted

# Command bodies import what they need when they run, so that `gan-augment --help` does not pay
# for torch and every subpackage (a start-up cost, not a cycle: nothing below imports the CLI).


def _parse_opts(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise ConfigError(f"--opt expects KEY=VALUE, got {p!r}.")
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


BACKENDS_HEADER = ("name", "version", "distribution", "conditional")


def cmd_backends(args) -> int:
    from gan_augment.core import backend_index

    cached = None if backend_index.env_flag("GAN_AUGMENT_DISABLE_PLUGIN_AUTOLOAD") else backend_index.read_rows()
    if cached is not None:  # the installed plugins have not changed since they were last loaded
        _print_table([BACKENDS_HEADER, *map(tuple, cached)])
        return 0
    from gan_augment.core.registry import get_host

    host = get_host()
    rows = [(info.name, info.version, info.distribution, "yes" if info.conditional else "no")
            for info in host.backends().values()]
    if not host.load_errors:  # a broken plugin is named on every run, never cached away
        backend_index.write_rows([list(r) for r in rows])
    _print_table([BACKENDS_HEADER, *rows])
    for name, err in sorted(host.load_errors.items()):
        print(f"(plugin {name!r} failed to load: {err})", file=sys.stderr)
    return 0


def _print_table(rows) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def cmd_train(args) -> int:
    from gan_augment.training.distributed import distributed_from_env

    with distributed_from_env():
        return _train(args)


def _train(args) -> int:
    """Read the run's settings (a resumed run's from its checkpoint), then train through
    ``model.fit()`` as a Python user does; fit's adoption step prints the ``data: ...`` line."""
    import torch

    import gan_augment as ga
    from gan_augment.core.data import load_dataset

    out = Path(args.out)
    opts = _parse_opts(args.opt)
    train_keys = set(ga.TrainConfig.__dataclass_fields__)
    train_opts = {k: v for k, v in opts.items() if k in train_keys}
    model_opts = {k: v for k, v in opts.items() if k not in train_keys}
    backend, model_config, saved = _run_settings(args, out, model_opts)
    train_opts = {**saved, **train_opts}
    if args.steps is None and args.epochs is None and not args.resume:
        raise ConfigError("say how long to train: --steps N or --epochs N.")
    ga.backend_info(backend)  # an unknown backend is named before any data is read
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    data = load_dataset(args.data, split=args.split, classes=classes)  # as stored; converted by fit
    if len(data) == 0:
        raise DataError(f"{args.data}: no images left after --split/--classes.")
    torch.manual_seed(args.seed if args.seed is not None else train_opts.get("seed", 0))
    try:
        model = ga.create(backend, **model_config)
    except ConfigError as exc:  # an --opt meant for the trainer gets the trainer's names suggested
        key = next((k for k in model_opts if repr(k) in str(exc) and did_you_mean(k, train_keys)), None)
        if key is not None:
            raise ConfigError(f"--opt {key}: not a {backend} setting nor a training setting."
                              f"{did_you_mean(key, train_keys)} Training settings: "
                              f"{', '.join(sorted(train_keys))}.") from exc
        raise
    for key, val in (("steps", args.steps), ("epochs", args.epochs), ("seed", args.seed),
                     ("batch_size", args.batch_size), ("checkpoint_every", args.checkpoint_every),
                     ("sample_every", args.sample_every), ("device", args.device), ("stop_at", args.stop_at),
                     ("checkpoint_minutes", args.checkpoint_minutes), ("init_from", args.init_from),
                     ("freeze_d", args.freeze_d)):
        if val is not None:
            train_opts[key] = val
    if args.steps is not None:
        train_opts.pop("epochs", None)
    # the data line is the run's first line, --quiet or not (a refused resume prints only its error)
    train_opts.update(out_dir=str(out), resume=args.resume, progress=not args.quiet, show_data=True)
    model.fit(data, **train_opts)  # classwise saves the whole model into out_dir itself
    if os.environ.get("RANK", "0") != "0":  # under torchrun one rank reports
        return 0
    steps = model.training_summary.get("steps")
    print(f"trained {backend}{f' for {steps} steps' if steps is not None else ''} on {len(data)} images")
    print(f"model folder:  {out}")
    if isinstance(model, ga.AdversarialAugmenter):  # one run folder of the shared trainer
        print(f"sample grid:   {out / 'samples.png'}")
        print(f"loss curve:    {out / 'loss_curve.png'}")
        if (out / ga.CHECKPOINT_NAME).exists():  # say only what is on disk
            print(f"checkpoint:    {out / ga.CHECKPOINT_NAME}  (continue with --resume)")
    return 0


#: trainer settings of a run that belong to one invocation, not to the run (a staged run's
#: --stop-at: resuming without one runs to the end)
PER_INVOCATION = ("resume", "out_dir", "progress", "stop_at", "show_data")


def _run_settings(args, out: Path, model_opts: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(backend, model config, saved training settings) of the run: a resumed run's from its
    checkpoint (a classwise run's from its first class's), a new run's from the flags."""
    from gan_augment.training.checkpoint import CHECKPOINT_NAME, read_trainer_state

    backend = args.backend
    given = {"image_size": args.image_size, "channels": args.channels}  # None: the data's own
    members = sorted(out.glob(f"*/{CHECKPOINT_NAME}")) if args.resume and not (out / CHECKPOINT_NAME).exists() else []
    if members:  # a run of per-class models (classwise): each member checks its own checkpoint
        if not backend:
            raise ConfigError(f"{out} holds per-class runs ({len(members)} checkpoints); pass the run's --backend "
                              "(e.g. classwise) and --opt settings with --resume.")
        state = read_trainer_state(members[0])  # member 0 has the run's seed
        return backend, {**given, **model_opts}, _saved_settings(state)
    if args.resume:
        ckpt = out / CHECKPOINT_NAME
        if not ckpt.exists():
            raise ConfigError(f"nothing to resume in {out}: no {CHECKPOINT_NAME}. Drop --resume to start a run.")
        state = read_trainer_state(ckpt)
        if backend and backend != state["backend"]:
            raise ConfigError(f"{out} is a {state['backend']!r} run; drop --backend or pass --backend {state['backend']}.")
        # a layout given again must match the run's: the trainer refuses a change, naming it
        again = {k: v for k, v in given.items() if v is not None}
        return state["backend"], {**state["model_config"], **again, **model_opts}, _saved_settings(state)
    if not backend:
        raise ConfigError("say which backend to train: --backend NAME (see `gan-augment backends`).")
    return backend, {**given, **model_opts}, {}


def _saved_settings(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state["train_config"].items() if k not in PER_INVOCATION}


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    import gan_augment as ga
    from gan_augment.core.plots import save_grid

    out = Path(args.out)
    if out.suffix not in (".png", ".npz"):
        raise ConfigError(f"--out must end in .png (a grid) or .npz (images, labels), got {out.name!r}.")
    model = ga.from_pretrained(args.model)
    g = torch.Generator().manual_seed(args.seed)
    labels = args.class_name if args.class_name is not None else None
    if labels is not None and labels not in model.class_names and labels.isdigit():
        labels = int(labels)
    x = model.sample(args.n, labels=labels, generator=g)
    if out.suffix == ".png":
        save_grid(x, out, nrow=max(1, int(args.n**0.5)))
    elif out.suffix == ".npz":
        import io

        from gan_augment.core.serialization import atomic_write_bytes

        lab = ga.GenerativeAugmenter.resolve_labels(model, args.n, labels, None)
        imgs = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        buf = io.BytesIO()
        idx = lab.numpy() if lab is not None else np.zeros(args.n, dtype=np.int64)
        np.savez_compressed(buf, images=imgs, labels=idx, class_names=np.array(model.class_names),
                            synthetic=np.ones(args.n, dtype=bool))
        atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {args.n} samples to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="gan-augment", description="Train, sample, evaluate and share GANs for medical image augmentation.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list installed backends").set_defaults(func=cmd_backends)

    t = sub.add_parser("train", help="train a backend on images")
    t.add_argument("--backend", help="backend name (see `gan-augment backends`)")
    t.add_argument("--data", required=True, help=".npz, ImageFolder directory, or .csv (path,label)")
    t.add_argument("--split", default=None, help="rows of this split only (e.g. train)")
    t.add_argument("--classes", default=None, help="comma-separated class names to keep")
    t.add_argument("--image-size", type=count, default=None,
                   help="side N of the N x N images the model makes; images are resized to it "
                        "(default: the data's own size, when the networks support it)")
    t.add_argument("--channels", type=int, default=None, choices=(1, 3),
                   help="1 (grey) or 3 (RGB); the data is converted to it (default: as the data)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--steps", type=count,
                   help="adversarial steps, each one generator update after n_critic critic updates "
                        "(n_critic: 1 for dcgan and bagan, 5 for wgan-gp, cwgan-gp and bagan-gp); "
                        "bagan and bagan-gp first run ae_steps autoencoder steps (default 1000, "
                        "--opt ae_steps=N), shown and counted in the progress bar; classwise: that many "
                        "for each class's model")
    g.add_argument("--epochs", type=positive,
                   help="passes over the data by the critic instead of --steps")
    t.add_argument("--out", required=True, help="run folder: checkpoints, grids, logs and the model")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--batch-size", type=count, default=None)
    t.add_argument("--checkpoint-every", type=non_negative, default=None, help="steps (0: only at the end)")
    t.add_argument("--checkpoint-minutes", type=minutes, default=None,
                   help="also checkpoint after this many minutes of training (default 10; 0: off)")
    t.add_argument("--sample-every", type=non_negative, default=None, help="steps (0: only at the end)")
    t.add_argument("--stop-at", type=count, default=None, help="stop at this step (resume later)")
    t.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:N or mps (default: the best available)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--opt", action="append", metavar="KEY=VALUE", help="backend or trainer setting (JSON value); repeatable")
    # transfer (gan_augment/training/transfer.py)
    t.add_argument("--init-from", default=None, metavar="PATH",
                   help="start from this run folder, model folder or Hub repo id of the same backend")
    t.add_argument("--freeze-d", type=non_negative, default=None, metavar="K",
                   help="with --init-from a run folder: freeze the first K discriminator blocks (FreezeD)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="sample images from a saved model")
    s.add_argument("--model", required=True, help="model folder, short name or Hub repo id")
    s.add_argument("-n", type=count, default=16, help="number of images")
    s.add_argument("--class", dest="class_name", default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="FILE.png (grid) or FILE.npz")
    s.set_defaults(func=cmd_sample)
    for extra in _extra_commands():
        extra(sub)
    return p


EXTRA_COMMAND_MODULES = ("gan_augment.cli.hub", "gan_augment.cli.evaluate", "gan_augment.cli.efficacy")


def _extra_commands():
    """The ``add_commands`` of the other cli modules. A module whose optional dependency is not
    installed is skipped with a note on stderr; an ImportError of our own code surfaces."""
    found = []
    for mod in EXTRA_COMMAND_MODULES:
        try:
            module = importlib.import_module(mod)
        except ImportError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing in ("", "gan_augment"):
                raise
            print(f"gan-augment: the commands of {mod} are unavailable because the module {missing} "
                  f"is not installed; install the package that provides {missing} to add them.", file=sys.stderr)
            continue
        found.append(module.add_commands)
    return found


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TrainingDiverged as exc:
        print(f"gan-augment: training stopped: {exc}", file=sys.stderr)
        return 1
    except GanAugmentError as exc:
        print(f"gan-augment: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave cannot be read or written (permissions, full disk)
        where = f" {exc.filename}" if exc.filename else ""
        print(f"gan-augment: error: cannot use{where}: {exc.strerror or exc}; check the path, its "
              "permissions and the free space.", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:  # the trainer checkpointed its last step and says where
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank stops; one says so
            print(f"gan-augment: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before the loop, or a second Ctrl-C: say what is on disk
        print(f"gan-augment: interrupted; {_kept(args)}", file=sys.stderr)
        return 130


def _kept(args) -> str:
    """What an interrupted command left: the checkpoint actually in its run folder, or nothing."""
    out = getattr(args, "out", None)
    if getattr(args, "command", None) != "train" or out is None:
        return "nothing was written."
    from gan_augment.training.checkpoint import CHECKPOINT_NAME, read_trainer_state

    ckpt = Path(out) / CHECKPOINT_NAME
    if not ckpt.exists():
        members = sorted(Path(out).glob(f"*/{CHECKPOINT_NAME}"))  # classwise: one run folder per class
        if members:
            return f"{len(members)} per-class checkpoint(s) in {out} are kept."
        return f"no checkpoint in {out}, nothing to resume."
    try:
        step = f" (step {read_trainer_state(ckpt)['step']:,})"
    except (GanAugmentError, KeyError, TypeError, ValueError):
        step = ""
    return f"the checkpoint at {ckpt}{step} is kept; continue with --resume."


if __name__ == "__main__":
    sys.exit(main())
