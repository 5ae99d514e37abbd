"""Class-wise wrapper: one unconditional backend trained per class, used as one conditional model.

The haemorrhage and leukemia studies did this. It lets any unconditional backend (DCGAN, WGAN-GP,
a third party's) serve class-targeted sampling. The wrapper is itself a
:class:`GenerativeAugmenter`, so it saves, loads, mixes and evaluates like any backend. It finds
its members through the registry by the name the user gives, so the core still never names a
backend.

It is a plugin like any other backend: it registers through the ``gan_augment`` entry-point group
and uses only gan_augment's public API.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import torch

import gan_augment as ga
from gan_augment import ConfigError, DataError, GenerativeAugmenter, ModelLoadError


def member_dirname(index: int, class_name: str) -> str:
    """Sub-folder of one class's run: ``class_00_neutrophil``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", class_name).strip("_") or "class"
    return f"class_{index:02d}_{slug}"


class ClassWise(GenerativeAugmenter):
    """``ClassWise(backend="wgan-gp", class_names=[...], **backend_config)``.

    Keys that are not base keys (image_size, channels, class_names) go to every member. After
    training, ``class_configs`` in the config lists each member's own config. Weights are saved
    in one file, with each member's keys prefixed by its class index (``"0.net.0.weight"``).
    """

    conditional: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {"backend": "wgan-gp", "backend_config": {}, "class_configs": None}
    test_config: ClassVar[dict[str, Any]] = {"backend": "wgan-gp", "backend_config": {"width": 8, "latent_dim": 16}}

    def __init__(self, backend: str = "wgan-gp", backend_config: dict[str, Any] | None = None,
                 class_configs: list[dict[str, Any]] | None = None, **config: Any):
        base = {k: config.pop(k) for k in list(config) if k in ga.BASE_DEFAULTS}
        backend_config = dict(backend_config or {})
        clash = sorted(set(backend_config) & set(ga.BASE_DEFAULTS))
        if clash:
            raise ConfigError(f"give {clash[0]!r} to ClassWise itself, not inside backend_config; "
                              "it is shared by every class's model.")
        backend_config.update(config)
        super().__init__(backend=backend, backend_config=backend_config, class_configs=class_configs, **base)
        self._member_cls = ga.backend_info(backend).cls
        if self._member_cls is ClassWise or self._member_cls.conditional:
            raise ConfigError(
                f"ClassWise wraps unconditional backends; {backend!r} is "
                f"{'the wrapper itself' if self._member_cls is ClassWise else 'already conditional'}. "
                f"Use create({backend!r}, ...) directly, or wrap an unconditional backend such as wgan-gp.")
        self._new_member("probe")  # reject bad backend_config keys now, not after training starts
        self.members: list[GenerativeAugmenter] | None = None
        if class_configs is not None:
            self._load_members(class_configs)
        elif self.config["class_names"] is not None:
            self.members = [self._new_member(n) for n in self.class_names]

    # ---- members ---------------------------------------------------------------------------
    def _new_member(self, class_name: str, config: dict[str, Any] | None = None) -> GenerativeAugmenter:
        c = self.config
        cfg = config if config is not None else {**c["backend_config"], "image_size": c["image_size"],
                                                  "channels": c["channels"], "class_names": [class_name]}
        return self._member_cls(**cfg)

    def _load_members(self, class_configs: list[dict[str, Any]]) -> None:
        names = self.config["class_names"]
        if names is None or len(class_configs) != len(names):
            raise ConfigError(f"class_configs lists {len(class_configs)} models but class_names is {names!r}; "
                              "they must match one to one (load the config.json saved with the weights).")
        members = []
        for name, cfg in zip(names, class_configs):
            if cfg.get("class_names") != [name] or cfg.get("image_size") != self.config["image_size"] \
                    or cfg.get("channels") != self.config["channels"]:
                raise ConfigError(f"class_configs entry for {name!r} does not match the wrapper "
                                  f"(class_names [{name!r}], image_size, channels): {cfg!r}.")
            members.append(self._new_member(name, cfg))
        self.members = members

    def _require_members(self) -> list[GenerativeAugmenter]:
        if self.members is None:
            raise ConfigError("this ClassWise model has no classes yet: pass class_names=[...] or call fit(data).")
        return self.members

    def adopt_class_names(self, names: list[str]) -> None:
        super().adopt_class_names(names)
        self.members = None  # made in fit(), one per class

    def adopt_layout(self, data: Any) -> str:
        provisional = bool(self.deferred_layout)
        note = super().adopt_layout(data)
        if provisional and self.members is not None:  # made, untrained, with the provisional layout
            self.members = [self._new_member(n) for n in self.class_names]
        return note

    def image_size_alternatives(self, size: int) -> list[int]:
        """The members' networks decide which sizes work."""
        return self._member_cls.image_size_alternatives(size)

    def model_for(self, label: int | str) -> GenerativeAugmenter:
        """The unconditional model of one class (by index or name)."""
        return self._require_members()[self.class_index(label)]

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        if self.members is not None:
            cfg["class_configs"] = [m.get_config() for m in self.members]
        return cfg

    # ---- the contract ----------------------------------------------------------------------
    def fit(self, data: Any, **train_config: Any) -> ClassWise:
        """Train each class's model on that class's images. ``out_dir`` gets one sub-folder per
        class plus the whole model; with ``resume`` a class without a checkpoint starts afresh."""
        show = train_config.pop("show_data", None)  # the wrapper's lines, not each member's
        adoption = self.adopt_data(data, select_classes=True)  # one model per class needs labels
        if show or (show is None and train_config.get("progress", True) and adoption.layout_adopted):
            for line in adoption.lines:
                print(line, file=sys.stderr)
        ds = adoption.data
        members = self.members if self.members is not None else [self._new_member(n) for n in self.class_names]
        self.members = members
        out = train_config.pop("out_dir", None)
        resume = bool(train_config.pop("resume", False))
        seed = int(train_config.pop("seed", None) or 0)
        summaries = {}
        for k, (cname, member) in enumerate(zip(self.class_names, members)):
            sub = ds.select_classes([cname])
            if len(sub) == 0:
                raise DataError(f"class {cname!r} has no images in {ds.source}; remove it from "
                                "class_names or add images of it.")
            cfg = dict(train_config, seed=seed + k)
            if out is not None:
                cfg["out_dir"] = str(Path(out) / member_dirname(k, cname))
                cfg["resume"] = resume and (Path(cfg["out_dir"]) / ga.CHECKPOINT_NAME).exists()
            elif resume:
                raise ConfigError("resume needs out_dir (the folder of the run to continue).")
            try:
                member.fit(sub, **cfg)
            except ga.TrainingInterrupted as exc:  # name the class; earlier classes are finished
                done = ", ".join(self.class_names[:k]) or "none"
                where = str(exc).replace("; continue with --resume", "")
                raise ga.TrainingInterrupted(
                    f"class {k + 1} of {len(members)} ({cname!r}): {where}; classes finished: {done}; continue "
                    f"with --resume and the same --backend {self.name} and --opt settings (resume=True in Python)",
                    exc.step, exc.checkpoint, exc.signal_name) from None
            summaries[cname] = member.training_summary
        self.training_summary = {"per_class": summaries, "backend": self.config["backend"]}
        if out is not None:
            self.save_pretrained(out, card=False)
        return self

    @torch.no_grad()
    def sample(self, n: int, labels: Any = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Each class's model draws its samples in class order, all from ``generator``."""
        if not isinstance(n, int) or n < 0:
            raise ConfigError(f"n must be a non-negative integer, got {n!r}.")
        members = self._require_members()
        lab = self.resolve_labels(n, labels, generator).cpu()
        out = torch.empty(n, *self.image_shape)
        for k, member in enumerate(members):
            idx = (lab == k).nonzero().flatten()
            if len(idx):
                out[idx] = member.sample(len(idx), generator=generator)
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{k}.{key}": v for k, m in enumerate(self._require_members())
                for key, v in m.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        members = self._require_members()
        parts: dict[str, dict[str, torch.Tensor]] = {}
        for key, v in state.items():
            head, _, rest = key.partition(".")
            parts.setdefault(head, {})[rest] = v
        expected = {str(k) for k in range(len(members))}
        if set(parts) != expected:
            raise ModelLoadError(
                f"the weights hold models for class indices {sorted(parts)} but this ClassWise model "
                f"has {len(members)} classes ({', '.join(self.class_names)}); load them with the "
                "config.json saved beside them.")
        for k, m in enumerate(members):
            m.load_state_dict(parts[str(k)])
        self.keep_layout()

    def to(self, device: str | torch.device) -> ClassWise:
        for m in self.members or []:
            m.to(device)
        return self

