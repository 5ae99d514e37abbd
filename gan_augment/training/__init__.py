"""Layer 3: the adversarial component: the base class backends extend and the one training loop
it runs, with its config, checkpoints, monitors and distributed helpers."""
