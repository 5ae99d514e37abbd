"""Layer 4: models from and to places. ``from_pretrained`` resolves a local folder, a short name
from ``hub/``'s index or a Hub repo id (resolve), reads the folder strictly (folder), and
``push_folder`` publishes one (push); ``index`` keeps the short-name list."""

from gan_augment.hub.pretrained import from_pretrained, load_folder, push_folder, push_to_hub

__all__ = ["from_pretrained", "load_folder", "push_folder", "push_to_hub"]
