"""DiffAugment (Zhao et al., NeurIPS 2020): the same random, differentiable augmentation applied
to every image the critic sees, real and fake alike.

Why: with a few hundred or thousand images the critic memorises the real set, its verdicts stop
being informative and the generator collapses or copies. Augmenting both real and generated
images keeps the critic from memorising, and because each operation is differentiable the
generator still gets gradients through it. Augmenting the real images only would teach the
generator to produce the augmentations.

The operations and their ranges are those of the paper's policy ``color,translation,cutout``:

* color: brightness shift in [-0.5, 0.5); saturation factor in [0, 2) around each pixel's
  channel mean (no effect on grey images); contrast factor in [0.5, 1.5) around each image's mean.
* translation: a whole-pixel shift of up to 1/8 of the height and width each way, zero filled.
* cutout: a zeroed rectangle of half the height and width whose centre falls anywhere in the
  image (at the borders part of it lies outside).

Every draw is per sample and comes from the ``torch.Generator`` passed in (on its own device), so a
training run and its resume stay identical. Outputs keep the input's dtype and device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_augment.core.errors import ConfigError
from gan_augment.core.naming import did_you_mean

OPS = ("color", "translation", "cutout")
DEFAULT_POLICY = "color,translation,cutout"
#: below this many training images the trainer's ``diffaugment="auto"`` turns the default policy on.
#: Was 5,000: at 2,557 PBC images cwgan-gp scored worse with it in every pair the generator race
#: ran (docs/diffaugment.md); below 1,000 it stays on, untested here, as the paper's small sets.
SMALL_DATA_IMAGES = 1000
OFF = ("none", "off", "")


def parse_policy(policy: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> ``("color", "translation", "cutout")``; ``"none"``, ``""``
    or None -> ``()`` (off). Unknown or repeated ops are a ConfigError naming the valid ones."""
    if policy is None:
        return ()
    if isinstance(policy, str):
        if policy.strip().lower() in OFF:
            return ()
        items = [p.strip() for p in policy.split(",")]
    elif isinstance(policy, Sequence) and all(isinstance(p, str) for p in policy):
        items = [p.strip() for p in policy]
    else:
        raise ConfigError(f"a DiffAugment policy is a string such as {DEFAULT_POLICY!r} or 'none', "
                          f"got {policy!r}.")
    for op in items:
        if op not in OPS:
            hint = did_you_mean(op.lower(), OPS)
            raise ConfigError(
                f"unknown DiffAugment op {op!r} in policy {policy!r}.{hint} Valid ops: "
                f"{', '.join(OPS)} (comma-separated, e.g. {DEFAULT_POLICY!r}); 'none' turns it off.")
    if len(set(items)) != len(items):
        raise ConfigError(f"DiffAugment policy {policy!r} names an op twice; name each op once.")
    return tuple(items)


def is_auto(setting: object) -> bool:
    """True for the setting ``"auto"`` (any case, spaces around it)."""
    return isinstance(setting, str) and setting.strip().lower() == "auto"


def resolve_policy(setting: str | Sequence[str] | None, n_images: int) -> tuple[str, ...]:
    """The policy a training run uses: ``"auto"`` means the default policy when the training set
    has fewer than :data:`SMALL_DATA_IMAGES` images (a critic memorises a few hundred images fast,
    as in the paper's 100-shot sets), else off: at our measured size it slowed learning more than
    it kept the critic from memorising."""
    if is_auto(setting):
        return parse_policy(DEFAULT_POLICY) if n_images < SMALL_DATA_IMAGES else ()
    return parse_policy(setting)


# ---- the operations, as pure functions of their per-sample parameters ------------------------
def _per_sample(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Add ``shift[i]`` to every pixel of image i."""
    return x + _per_sample(shift, x)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's distance from its channel mean (its grey value) by ``factor[i]``."""
    grey = x.mean(dim=1, keepdim=True)
    return grey + (x - grey) * _per_sample(factor, x)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from its own mean by ``factor[i]``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (x - mean) * _per_sample(factor, x)


def translate(x: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """Move image i down by ``shift_y[i]`` and right by ``shift_x[i]`` whole pixels; pixels moved in
    from outside are 0. Built from two gathers, so gradients reach every input pixel kept."""
    n, c, h, w = x.shape
    dy = shift_y.to(x.device, torch.long).view(n, 1)
    dx = shift_x.to(x.device, torch.long).view(n, 1)
    rows = torch.arange(h, device=x.device).view(1, h) - dy  # source row of each output row
    cols = torch.arange(w, device=x.device).view(1, w) - dx
    out = x.gather(2, rows.clamp(0, h - 1).view(n, 1, h, 1).expand(n, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1).view(n, 1, 1, w).expand(n, c, h, w))
    inside = (((rows >= 0) & (rows < h)).view(n, 1, h, 1)
              & ((cols >= 0) & (cols < w)).view(n, 1, 1, w))
    return torch.where(inside, out, out.new_zeros(()))


def cutout(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
           size: tuple[int, int]) -> torch.Tensor:
    """Zero rows ``top[i] .. top[i] + size[0] - 1`` x columns ``left[i] .. left[i] + size[1] - 1``
    of image i (the part of that rectangle inside the image)."""
    n, _, h, w = x.shape
    t = top.to(x.device, torch.long).view(n, 1)
    lf = left.to(x.device, torch.long).view(n, 1)
    r = torch.arange(h, device=x.device).view(1, h)
    cc = torch.arange(w, device=x.device).view(1, w)
    hole = (((r >= t) & (r < t + size[0])).view(n, 1, h, 1)
            & ((cc >= lf) & (cc < lf + size[1])).view(n, 1, 1, w))
    return torch.where(hole, x.new_zeros(()), x)


def translation_range(h: int, w: int) -> tuple[int, int]:
    """Largest shift each way: 1/8 of the side, rounded down."""
    return h // 8, w // 8


def cutout_size(h: int, w: int) -> tuple[int, int]:
    """Side lengths of the cutout rectangle: half the image's, rounded down."""
    return h // 2, w // 2


# ---- random parameters and the composed augmentation ---------------------------------------
def draw_params(ops: Sequence[str], shape: Sequence[int], generator: torch.Generator
                ) -> dict[str, torch.Tensor]:
    """Per-sample parameters of ``ops`` for a batch of ``shape`` (N, C, H, W), drawn in policy
    order from ``generator`` on its own device (CPU or CUDA)."""
    if not isinstance(generator, torch.Generator):
        raise ConfigError("DiffAugment draws from a torch.Generator so training can resume exactly; "
                          f"pass one (got {type(generator).__name__}).")
    n, _, h, w = (int(s) for s in shape)
    dev = generator.device

    def uniform() -> torch.Tensor:
        return torch.rand(n, generator=generator, device=dev)

    def integers(low: int, high_inclusive: int) -> torch.Tensor:
        return torch.randint(low, high_inclusive + 1, (n,), generator=generator, device=dev)

    p: dict[str, torch.Tensor] = {}
    for op in ops:
        if op == "color":
            p["brightness"] = uniform() - 0.5
            p["saturation"] = uniform() * 2.0
            p["contrast"] = uniform() + 0.5
        elif op == "translation":
            sy, sx = translation_range(h, w)
            p["shift_y"], p["shift_x"] = integers(-sy, sy), integers(-sx, sx)
        elif op == "cutout":
            ch, cw = cutout_size(h, w)
            # the centre is uniform over the image; top = centre - ch // 2
            p["cut_top"] = integers(-(ch // 2), h - ch // 2 - ch % 2)
            p["cut_left"] = integers(-(cw // 2), w - cw // 2 - cw % 2)
        else:
            parse_policy([op])  # raises the clear error
    return p


def apply_params(x: torch.Tensor, ops: Sequence[str], params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply ``ops`` in order with parameters from :func:`draw_params`."""
    for op in ops:
        if op == "color":
            x = contrast(saturation(brightness(x, params["brightness"]), params["saturation"]),
                         params["contrast"])
        elif op == "translation":
            x = translate(x, params["shift_y"], params["shift_x"])
        elif op == "cutout":
            x = cutout(x, params["cut_top"], params["cut_left"], cutout_size(x.shape[2], x.shape[3]))
    return x


def diff_augment(x: torch.Tensor, policy: str | Sequence[str] | None,
                 generator: torch.Generator) -> torch.Tensor:
    """Augment an image batch (N, C, H, W) with ``policy``, drawing from ``generator``.
    An empty policy returns ``x`` itself, untouched."""
    ops = parse_policy(policy)
    if not ops:
        return x
    if x.dim() != 4:
        raise ConfigError(f"DiffAugment takes image batches (N, C, H, W), got shape {tuple(x.shape)}.")
    return apply_params(x, ops, draw_params(ops, x.shape, generator))


class AugmentedCritic(nn.Module):
    """A critic that sees every input through DiffAugment: ``AugmentedCritic(D, policy)(x, *args)``
    is ``D(diff_augment(x, policy, self.rng), *args)``.

    The trainer wraps the discriminator once and hands the wrapper to a backend's losses, so real
    batches, fakes and gradient-penalty interpolates all pass through the same policy, for built-in
    and third-party backends alike. Set ``rng`` (the trainer sets its step generator) before a call.
    ``state_dict`` and ``load_state_dict`` are the critic's own (no prefix), so checkpoints do not
    change; other attributes are looked up on the critic.
    """

    def __init__(self, critic: nn.Module, policy: str | Sequence[str] | None = DEFAULT_POLICY,
                 rng: torch.Generator | None = None):
        super().__init__()
        if isinstance(critic, AugmentedCritic):
            raise ConfigError("this critic is already wrapped in AugmentedCritic; wrap the plain critic once.")
        self.critic = critic
        self.ops = parse_policy(policy)
        self.rng = rng

    @property
    def policy(self) -> str | None:
        """The policy as a string (``"color,translation,cutout"``), or None when off."""
        return ",".join(self.ops) or None

    def forward(self, x: torch.Tensor, *args, **kwargs):
        if self.ops:
            if self.rng is None:
                raise ConfigError("AugmentedCritic has no generator: set `critic.rng = torch.Generator()` "
                                  "(the trainer sets its step generator) before calling it.")
            x = diff_augment(x, self.ops, self.rng)
        return self.critic(x, *args, **kwargs)

    def state_dict(self, *args, **kwargs):
        return self.critic.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.critic.load_state_dict(state_dict, strict=strict, assign=assign)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            critic = self.__dict__.get("_modules", {}).get("critic")
            if critic is None:
                raise
            return getattr(critic, name)
