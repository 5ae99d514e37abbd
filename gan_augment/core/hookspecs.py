"""The hooks a gan-augment plugin may implement. One module, one docstring per hook.

Most backends need no hook: their entry point names the class (``yourgan = "pkg:YourGAN"``) and
the host makes the plugin. A plugin module (registered under the ``gan_augment`` entry-point
group, or passed to :func:`gan_augment.register_plugin` at run time) decorates its
implementations with ``gan_augment.hookimpl``, for a package with several backends or classes
picked at run time.
"""

import pluggy

PROJECT_NAME = "gan_augment"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def gan_augment_backends():
    """Return a list of :class:`gan_augment.GenerativeAugmenter` subclasses this plugin provides.

    Each class must set a unique ``name`` (the string users pass to ``gan_augment.create``).
    Called once when the host collects backends; keep it free of heavy work.
    """
