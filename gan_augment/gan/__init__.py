"""GAN building blocks: networks, losses, the adversarial base class and DiffAugment."""
