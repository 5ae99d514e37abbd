"""Conformance kit: the checks every backend must pass, importable by third parties.

It works like scikit-learn's ``parametrize_with_checks``. In a plugin's own test suite::

    from gan_augment.testing import parametrize_backend_checks

    @parametrize_backend_checks(["my-backend"])
    def test_conformance(check, tmp_path):
        check(tmp_path)

Each check is small and has a name. A failure says which rule of the contract broke. The kit
builds tiny models (16 px, one channel). A backend class can set ``test_config`` (model keys) and
``test_train_config`` (trainer keys) to make itself small enough; the defaults are a few steps
at batch size 8.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, GanAugmentError
from gan_augment.core.folder import load_folder
from gan_augment.core.registry import backend_info, list_backends
from gan_augment.core.serialization import read_safetensors
from gan_augment.gan.diffaugment import cutout_size
from gan_augment.testing.toy import toy_two_class_data
from gan_augment.training.adversarial import AdversarialAugmenter

BackendRef = str | Callable[..., GenerativeAugmenter]


@dataclass(frozen=True)
class Check:
    """One named conformance check; call it with a fresh temporary folder."""

    backend: str
    name: str
    func: Callable[[Path], None]

    def __call__(self, tmp_path: str | Path) -> None:
        self.func(Path(tmp_path))

    @property
    def id(self) -> str:
        return f"{self.backend}::{self.name}"

    def __repr__(self) -> str:
        return f"Check({self.id})"


class _Subject:
    """One backend under test: how to build it small, its tiny data, and a fitted copy."""

    def __init__(self, ref: BackendRef, config: dict[str, Any] | None, train_config: dict[str, Any] | None,
                 image_size: int, channels: int):
        if isinstance(ref, str):
            factory: Callable[..., GenerativeAugmenter] = backend_info(ref).cls
        else:
            factory = ref
        self.factory = factory
        cls_cfg = dict(getattr(factory, "test_config", {}) or {}) if isinstance(factory, type) else {}
        cls_train = dict(getattr(factory, "test_train_config", {}) or {}) if isinstance(factory, type) else {}
        self.config = {"image_size": image_size, "channels": channels, **cls_cfg, **(config or {})}
        self.train_config = {"steps": 2, "batch_size": 8, "seed": 0, "progress": False, "device": "cpu",
                             "grid_size": 4, "log_every": 1, **cls_train, **(train_config or {})}
        probe = self.make()
        self.label = ref if isinstance(ref, str) else (probe.name or getattr(ref, "__name__", "backend"))
        self.conditional = bool(probe.conditional)
        self.data = toy_two_class_data(8, image_size, channels, classes=("dark", "bright") if self.conditional else ("toy",))
        self._fitted: GenerativeAugmenter | None = None

    def make(self, **overrides: Any) -> GenerativeAugmenter:
        model = self.factory(**{**self.config, **overrides})
        if not isinstance(model, GenerativeAugmenter):
            raise AssertionError(f"the factory returned {type(model).__name__}, not a GenerativeAugmenter")
        return model

    def fit(self, model: GenerativeAugmenter, **train: Any) -> GenerativeAugmenter:
        out = model.fit(self.data, **{**self.train_config, **train})
        assert out is model, "fit() must return the model itself"
        return model

    def fitted(self) -> GenerativeAugmenter:
        if self._fitted is None:
            self._fitted = self.fit(self.make())
        return self._fitted


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _labels_for(model: GenerativeAugmenter, n: int) -> list[int] | None:
    return [i % model.num_classes for i in range(n)] if model.conditional else None


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert sorted(a) == sorted(b), f"{what}: state_dict keys differ: {sorted(set(a) ^ set(b))[:5]}"
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, f"{what}: {k} changed dtype or shape"
        assert torch.equal(a[k].cpu(), b[k].cpu()), f"{what}: tensor {k} differs (max abs diff " \
            f"{(a[k].double() - b[k].double()).abs().max().item():.3g})"


# ---- the checks ------------------------------------------------------------------------------
def check_config(s: _Subject, tmp: Path) -> None:
    """Created from a config; the config is JSON, rebuilds an equal model, rejects unknown keys."""
    names = list(s.data.class_names) if s.conditional else None
    m = s.make(class_names=names) if names else s.make()
    assert isinstance(m.name, str) and m.name, "a backend needs a non-empty `name`"
    cfg = m.get_config()
    text = json.dumps(cfg)
    rebuilt = type(m)(**json.loads(text))
    assert rebuilt.get_config() == cfg, "rebuilding from get_config() must give the same config"
    assert m.image_shape == (s.config["channels"], s.config["image_size"], s.config["image_size"])
    if names:
        assert m.class_names == names and m.num_classes == len(names)
    try:
        s.make(definitely_not_a_key=1)
    except ConfigError:
        pass
    else:
        raise AssertionError("an unknown config key must raise gan_augment.ConfigError")


def check_fit_and_sample(s: _Subject, tmp: Path) -> None:
    """A few steps of fit on tiny data; sample gives float32 (n, C, H, W) in [0, 1] on the CPU."""
    m = s.fitted()
    if s.conditional:
        assert m.class_names == list(s.data.class_names), \
            f"fit() must adopt the data's class names when none were given; got {m.class_names}"
    for n in (5, 1):
        x = m.sample(n, generator=_gen(0))
        assert isinstance(x, torch.Tensor), "sample() must return a torch.Tensor"
        assert tuple(x.shape) == (n, *m.image_shape), f"sample({n}) shape {tuple(x.shape)} != {(n, *m.image_shape)}"
        assert x.dtype == torch.float32, f"sample() dtype {x.dtype}, must be float32"
        assert x.device.type == "cpu", "sample() must return CPU tensors"
        assert bool(torch.isfinite(x).all()), "sample() returned NaN or inf"
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0, f"sample() range [{float(x.min())}, {float(x.max())}] outside [0, 1]"
    empty = m.sample(0, generator=_gen(0))
    assert tuple(empty.shape) == (0, *m.image_shape), "sample(0) must return an empty (0, C, H, W) tensor"


def check_determinism(s: _Subject, tmp: Path) -> None:
    """The same torch.Generator seed gives the same images, whatever the global RNG does."""
    m = s.fitted()
    labels = _labels_for(m, 6)
    torch.manual_seed(1)
    a = m.sample(6, labels=labels, generator=_gen(123))
    torch.manual_seed(2)
    torch.rand(10)
    b = m.sample(6, labels=labels, generator=_gen(123))
    assert torch.equal(a, b), "sample() with the same generator seed must give identical images " \
        "(draw all randomness from `generator`, never from the global RNG)"
    c = m.sample(6, labels=labels, generator=_gen(124))
    assert not torch.equal(a, c), "different generator seeds gave identical images: is the noise used?"


def check_save_load(s: _Subject, tmp: Path) -> None:
    """save_pretrained then load gives the same config, tensors and samples."""
    m = s.fitted()
    folder = m.save_pretrained(tmp / "model")
    for f in ("config.json", "model.safetensors", "README.md"):
        assert (Path(folder) / f).is_file(), f"save_pretrained did not write {f}"
    if m.name in list_backends() and type(m) is backend_info(m.name).cls:
        loaded = load_folder(folder)
    else:  # a factory-made backend that is not registered: rebuild it by hand
        cfg = json.loads((Path(folder) / "config.json").read_text())["config"]
        loaded = type(m)(**cfg)
        loaded.load_state_dict(read_safetensors(Path(folder) / "model.safetensors"))
    assert type(loaded) is type(m)
    assert loaded.get_config() == m.get_config(), "the loaded config differs from the saved one"
    _assert_same_state(m.state_dict(), loaded.state_dict(), "save/load")
    labels = _labels_for(m, 4)
    assert torch.equal(m.sample(4, labels=labels, generator=_gen(7)), loaded.sample(4, labels=labels, generator=_gen(7))), \
        "the loaded model samples differently from the saved one"
    bad = {k: v for k, v in list(m.state_dict().items())[1:]}
    try:
        type(m)(**m.get_config()).load_state_dict(bad)
    except Exception as exc:  # must be a clear, library error
        assert isinstance(exc, GanAugmentError), f"a missing weight raised {type(exc).__name__}, not a GanAugmentError"
    else:
        raise AssertionError("load_state_dict accepted a state with a missing key; loading must be strict")


def check_labels(s: _Subject, tmp: Path) -> None:
    """Conditional: every class can be asked for by index or name; labels change the output;
    unknown labels and wrong label counts are ConfigErrors. Unconditional: only class 0 exists."""
    m = s.fitted()

    def expect_error(what: str, **kw: Any) -> None:
        try:
            m.sample(kw.pop("n", 3), generator=_gen(0), **kw)
        except ConfigError:
            return
        raise AssertionError(f"{what} must raise gan_augment.ConfigError")

    if not s.conditional:
        assert tuple(m.sample(2, labels=0, generator=_gen(0)).shape) == (2, *m.image_shape)
        expect_error("labels=1 on a one-class unconditional backend", labels=1)
        return
    for k, name in enumerate(m.class_names):
        xk = m.sample(3, labels=k, generator=_gen(5))
        xn = m.sample(3, labels=name, generator=_gen(5))
        assert torch.equal(xk, xn), f"labels={k} and labels={name!r} must mean the same class"
    x0, x1 = m.sample(4, labels=0, generator=_gen(9)), m.sample(4, labels=1, generator=_gen(9))
    assert not torch.equal(x0, x1), "classes 0 and 1 gave identical images from the same noise: labels are ignored"
    mixed = m.sample(4, labels=[0, 1, 1, 0], generator=_gen(0))
    assert tuple(mixed.shape) == (4, *m.image_shape)
    expect_error("an unknown class name", labels="no-such-class")
    expect_error("a class index out of range", labels=m.num_classes)
    expect_error("a negative class index", labels=-1)
    expect_error("a label list of the wrong length", n=3, labels=[0, 1])


def check_exact_resume(s: _Subject, tmp: Path) -> None:
    """2N steps straight equal N steps, stop, resume in a new process-like model, N more."""
    n = int(s.train_config["steps"])

    def run(**train: Any) -> GenerativeAugmenter:
        # Network initialisation draws from torch's global RNG (as in torch itself), so both runs
        # start from the same seed; everything after that is the backend's and trainer's job.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return s.fit(s.make(), steps=2 * n, **train)

    straight = run(out_dir=str(tmp / "straight"))
    run(stop_at=n, out_dir=str(tmp / "staged"))
    resumed = run(out_dir=str(tmp / "staged"), resume=True)
    _assert_same_state(straight.state_dict(), resumed.state_dict(), "exact resume")
    labels = _labels_for(straight, 4)
    assert torch.equal(straight.sample(4, labels=labels, generator=_gen(3)),
                       resumed.sample(4, labels=labels, generator=_gen(3))), "resumed run samples differently"


def check_diffaugment(s: _Subject, tmp: Path) -> None:
    """Trained with a DiffAugment policy, the critic sees augmented images in every call (real,
    fake, penalty interpolates), with no code in the backend. The policy is "cutout": each image
    the critic gets must hold a zeroed block of at least a quarter of the cutout (the part that
    always lies inside the image). Real images scaled to [-1, 1] from uint8 are never exactly 0."""
    import math


    m = s.make(class_names=list(s.data.class_names))  # named classes: fit() keeps these networks
    if not isinstance(m, AdversarialAugmenter):
        import pytest

        pytest.skip(f"{type(m).__name__} is not trained by the shared trainer; it has no critic to augment")
    c, h, w = m.image_shape
    ch, cw = cutout_size(h, w)
    need = math.ceil(ch / 2) * math.ceil(cw / 2) * c
    seen: list[torch.Tensor] = []
    handle = m.discriminator.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().float()))
    try:
        s.fit(m, steps=1, diffaugment="cutout")
    finally:
        handle.remove()
    assert seen, "the critic was never called during training"
    for k, x in enumerate(seen):
        zeros = (x == 0).flatten(1).sum(1)
        assert bool((zeros >= need).all()), (
            f"critic call {k} got images without the DiffAugment cutout ({int(zeros.min())} zero pixels, "
            f"expected >= {need}): the losses must call the critic `D` they are given, not "
            "self.discriminator, so the trainer's DiffAugment reaches every critic input")
    assert m.training_summary.get("diffaugment") == "cutout", "the training summary must record the policy"


CHECKS: tuple[Callable[[_Subject, Path], None], ...] = (
    check_config, check_fit_and_sample, check_determinism, check_save_load, check_labels, check_exact_resume,
    check_diffaugment,
)


def backend_checks(backend: BackendRef, config: dict[str, Any] | None = None,
                   train_config: dict[str, Any] | None = None, image_size: int = 16,
                   channels: int = 1, label: str | None = None) -> Iterator[Check]:
    """Yield the named checks for one backend: a registered name, or a class/factory taking config."""
    subject = _Subject(backend, config, train_config, image_size, channels)
    for fn in CHECKS:
        name = fn.__name__.removeprefix("check_")
        yield Check(label or str(subject.label), name, lambda tmp, fn=fn: fn(subject, tmp))


def parametrize_backend_checks(backends: Iterable[BackendRef | tuple[BackendRef, dict[str, Any]]],
                               **kwargs: Any):
    """A ``pytest.mark.parametrize("check", ...)`` over every check of every backend.

    An item is a backend name or factory, or a ``(backend, config)`` pair.
    """
    import pytest

    checks: list[Check] = []
    for item in backends:
        ref, cfg = item if isinstance(item, tuple) else (item, None)
        label = None
        if cfg and isinstance(ref, str):
            label = f"{ref}({','.join(f'{k}={v}' for k, v in cfg.items() if not isinstance(v, dict))})"
        checks.extend(backend_checks(ref, config=cfg, label=label, **kwargs))
    return pytest.mark.parametrize("check", checks, ids=[c.id for c in checks])
