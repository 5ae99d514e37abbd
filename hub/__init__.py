"""Data package: the short-name index and the bundled model copies, installed as
``gan_augment._hub`` (pyproject.toml maps it here) so ``importlib.resources`` finds them in a wheel
and in an editable install alike. See README.md in this folder."""
