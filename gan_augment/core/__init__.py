"""Layer 1: the contract, errors, hook specs, config helpers, data loading, the image layout rule, safe
serialisation and the plugin host. Imports nothing else from gan_augment."""
