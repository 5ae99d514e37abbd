"""Layer 4: models from and to places. ``from_pretrained`` resolves a local folder, a short name
from ``hub/``'s index or a Hub repo id (resolve) and builds the backend config.json names (folder);
``push_folder`` publishes a saved folder as it is; ``index`` keeps the short-name list. Saving,
loading one backend and pushing a model live on the contract (core/hubmixin.py)."""

from gan_augment.hub.pretrained import from_pretrained, load_folder, push_folder, push_to_hub

__all__ = ["from_pretrained", "load_folder", "push_folder", "push_to_hub"]
