"""Layer 4: SyntheticMix and what it is made of: the sampling strategy, the plan, labels, image forms."""
