"""Layer 2: the one training loop every adversarial backend shares, its config, checkpoints,
monitors, distributed helpers and plots."""
