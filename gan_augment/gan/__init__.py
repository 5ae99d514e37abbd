"""Layer 3: GAN building blocks (networks, losses) and the adversarial base class backends extend."""
