"""Layer 4: the maintainers' side of short names. ``index`` lists a published model in
``hub/index.json`` and bundles its copy; finding, loading, saving and pushing a model folder
live in core/folder.py, which the contract and ``gan_augment.from_pretrained`` use."""
