"""Layer 1: the contract, errors, data loading and helpers every other layer builds on."""
