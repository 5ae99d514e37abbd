"""Layer 2: GAN building blocks (networks, losses, DiffAugment) that backends and the trainer use."""
