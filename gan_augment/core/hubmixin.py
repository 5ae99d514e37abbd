"""``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for every backend, on huggingface_hub's
``ModelHubMixin``: its ``_save_pretrained`` / ``_from_pretrained`` hooks, its ``generate_model_card``
and its ``push_to_hub`` (create_repo + save to a temp folder + upload_folder). Where the mixin's own
``save_pretrained`` and ``from_pretrained`` cannot serve, the methods below say why."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelHubMixin
from huggingface_hub.errors import HfHubHTTPError, HFValidationError

from gan_augment.core.download import locate
from gan_augment.core.errors import ConfigError, GanAugmentError, ModelLoadError
from gan_augment.core.format import (
    CARD_NAME,
    CONFIG_NAME,
    GRID_NAME,
    PUSH_FILES,
    REPO_ID_RE,
    first_line,
    load_model_files,
    model_config,
    read_config,
    write_model_files,
)
from gan_augment.core.modelcard import render_card, write_sample_grid
from gan_augment.core.serialization import atomic_write_text

#: What a model card takes (core/modelcard.py render_card); ``metrics`` also go to config.json.
CARD_KEYS = ("license", "datasets", "citation", "data_description", "metrics", "extra", "tags")


def card_kwargs(card_info: dict[str, Any], model_card_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    merged = {**(model_card_kwargs or {}), **card_info}
    unknown = sorted(set(merged) - set(CARD_KEYS))
    if unknown:
        raise ConfigError(f"unknown model card field {unknown[0]!r}; the card takes {', '.join(CARD_KEYS)}.")
    return merged


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID_RE.match(str(repo_id)):
        raise ConfigError(f"{repo_id!r} is not a Hub repo id; use owner/name (e.g. your-user/neutrophil-wgan-gp).")


def push_failed(repo_id: str, exc: BaseException) -> GanAugmentError:
    return GanAugmentError(f"pushing to {repo_id} failed: {first_line(exc)}; check that you are logged in "
                           "(`hf auth login` or token=...) with write access.")


class HubMixin(ModelHubMixin):
    """The Hub side of :class:`gan_augment.GenerativeAugmenter`."""

    def __new__(cls, *args: Any, **kwargs: Any):
        """Skip ModelHubMixin.__new__, which records the raw constructor arguments as
        ``_hub_mixin_config``: our config is ``self.config`` (validated, defaults filled in) and
        ``_save_pretrained`` writes it, so a second, unvalidated copy could only disagree."""
        return object.__new__(cls)

    def save_pretrained(self, save_directory: str | os.PathLike, *, card: bool = True,
                        config: Any = None, model_card_kwargs: dict | None = None, **card_info: Any) -> Path:
        """Write model.safetensors and config.json, then (unless ``card=False``, what the trainer
        uses at every checkpoint) samples.png and the README.md model card; each file atomically.
        ``card_info``: license, datasets, citation, data_description, metrics, extra, tags.
        Returns the folder.

        Not ModelHubMixin.save_pretrained: it deletes config.json before writing the weights (an
        interrupted save leaves a folder that no longer loads), never replaces an existing README.md
        (a re-save keeps the old card), and writes the card in place; tests/test_hub.py shows it.
        """
        if config is not None:
            raise ConfigError("save_pretrained takes no config: a model's config is fixed when it is created; "
                              "create the model with the config you want, then save it.")
        card_info = card_kwargs(card_info, model_card_kwargs)
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_pretrained(directory, metrics=card_info.get("metrics"))
        if card:
            write_sample_grid(self, directory / GRID_NAME)
            atomic_write_text(directory / CARD_NAME, str(self.generate_model_card(**card_info)))
        return directory

    def _save_pretrained(self, save_directory: Path, metrics: dict | None = None) -> None:
        """The mixin's hook: model.safetensors, then our config.json carrying the weights' sha256."""
        write_model_files(self, Path(save_directory), metrics)

    def generate_model_card(self, *args: Any, **card_info: Any) -> ModelCard:
        """Our card (core/modelcard.py) instead of the mixin's template: front matter from
        ModelCardData, samples, intended use and limits, training-data provenance and citation,
        metrics beside their real-vs-real floors."""
        return ModelCard(render_card(model_config(self, card_info.get("metrics")), **card_info))

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    commit_message: str | None = None, revision: str | None = None,
                    create_pr: bool | None = None, model_card_kwargs: dict | None = None, **card_info: Any):
        """Upload the model files (never anything else) in one commit to ``revision`` (a branch,
        default main) with ModelHubMixin.push_to_hub. ``card_info`` as for save_pretrained.
        Returns the CommitInfo; its ``oid`` is the commit to pin in hub/index.json."""
        check_repo_id(repo_id)
        card_info = card_kwargs(card_info, model_card_kwargs)
        try:
            return super().push_to_hub(
                repo_id, private=private, token=token, branch=revision, create_pr=create_pr,
                commit_message=commit_message or f"Upload {self.name} model with gan-augment",
                allow_patterns=list(PUSH_FILES), model_card_kwargs=card_info)
        except (HfHubHTTPError, HFValidationError, OSError) as exc:
            raise push_failed(repo_id, exc) from exc

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, force_download: bool = False,
                        device: Any = None):
        """Load a model of this backend from a local folder or a Hub repo (``owner/name[@revision]``
        or ``hf://owner/name``), strictly. Short names and picking the backend from config.json:
        :func:`gan_augment.from_pretrained`.

        Not ModelHubMixin.from_pretrained: it passes every top-level key of config.json
        (format_version, backend, ...) to the model as constructor arguments, sends any path that
        is not an existing folder to the Hub, and on the base class cannot know which backend to
        build; tests/test_hub.py shows the first.
        """
        if inspect.isabstract(cls):
            raise ConfigError(f"{cls.__name__} cannot tell which backend to build; use "
                              "gan_augment.from_pretrained(...), which reads it from config.json, or a "
                              "backend's own class.")
        return cls._from_pretrained(model_id=name_or_path, revision=revision, cache_dir=cache_dir,
                                    force_download=force_download, local_files_only=local_files_only,
                                    token=token, device=device)

    @classmethod
    def _from_pretrained(cls, *, model_id: str | os.PathLike, revision: str | None,
                         cache_dir: str | os.PathLike | None, force_download: bool,
                         local_files_only: bool, token: str | bool | None, device: Any = None):
        """The mixin's hook: our config.json and model.safetensors from the folder or the Hub
        snapshot, the model built from this class (nothing from the folder is imported)."""
        folder = locate(model_id, revision, cache_dir=cache_dir, local_files_only=local_files_only,
                        token=token, force_download=force_download)
        cfg = read_config(folder / CONFIG_NAME)
        if cfg["backend"] != cls.name:
            raise ModelLoadError(f"{folder} holds a {cfg['backend']!r} model, not a {cls.name!r} one; load it "
                                 "with gan_augment.from_pretrained(...), which builds the backend it names.")
        try:
            model = cls(**cfg["config"])
        except Exception as exc:
            raise ModelLoadError(f"{folder}: config.json does not build a {cls.name!r} model: "
                                 f"{first_line(exc)}") from exc
        load_model_files(model, folder, cfg)
        if device is not None:
            model.to(device)
        return model
