"""The core's own backends, registered with the host as a plugin like any other.

pytest registers its built-in features as plugins the same way. The host registers this module
by import path, and never names a backend, so the core stays free of backend imports. The
class-wise wrapper lives here because it wraps backends without being one of them.
"""

from gan_augment.hookspecs import hookimpl


@hookimpl
def gan_augment_backends():
    from gan_augment.classwise import ClassWise

    return [ClassWise]
