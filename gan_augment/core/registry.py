"""The plugin host: loads backends from the ``gan_augment`` entry-point group with pluggy.

An entry point names either a backend class (``dcgan = "gan_augment_dcgan:DCGAN"``; the class's
``name`` defaults to the entry point's) or a module with the ``gan_augment_backends`` hook, which
returns a list of classes (for one package with several backends, or code that picks them at run
time).

Each entry point is loaded on its own, so a broken plugin is named in a warning and the others
still load (``GAN_AUGMENT_STRICT_PLUGINS=1`` turns that warning into an error, for CI).
``GAN_AUGMENT_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points entirely, for debugging.
"""

from __future__ import annotations

import importlib.metadata as md
import warnings
from dataclasses import dataclass
from types import ModuleType

import pluggy

from gan_augment.core import hookspecs
from gan_augment.core.backend_index import ENTRY_POINT_GROUP, env_flag
from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import BackendNotFoundError, PluginError
from gan_augment.core.naming import did_you_mean


@dataclass(frozen=True)
class BackendInfo:
    """What the host knows about one backend: enough for `gan-augment backends`."""

    name: str
    cls: type
    plugin: str
    distribution: str
    version: str

    @property
    def conditional(self) -> bool:
        return bool(self.cls.conditional)


class PluginWarning(UserWarning):
    """A plugin failed to load; the other plugins are unaffected."""


class ClassPlugin:
    """A backend class an entry point names, as a pluggy plugin: its one hook returns the class."""

    def __init__(self, cls: type, name: str):
        if not (isinstance(cls, type) and issubclass(cls, GenerativeAugmenter)):
            raise PluginError(f"entry point {name!r} names {cls!r}, which is neither a GenerativeAugmenter "
                              "subclass nor a module with the gan_augment_backends hook; name the class.")
        own = cls.__dict__.get("name")
        if own and own != name:
            raise PluginError(f"entry point {name!r} names {cls.__name__}, whose name is {own!r}; drop the "
                              "class's `name` (it defaults to the entry point's) or make the two equal.")
        cls.name = name
        self.cls = cls

    @hookspecs.hookimpl
    def gan_augment_backends(self) -> list[type]:
        return [self.cls]


def as_plugin(obj: object, name: str) -> object:
    """``obj`` as pluggy sees plugins: a backend class becomes a :class:`ClassPlugin`."""
    return ClassPlugin(obj, name) if isinstance(obj, type) else obj


class BackendHost:
    """Owns the pluggy manager and the name -> backend table built from it."""

    def __init__(self, autoload: bool | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._dist_of: dict[str, tuple[str, str]] = {}
        self._table: dict[str, BackendInfo] | None = None
        self.load_errors: dict[str, str] = {}
        if autoload is None:
            autoload = not env_flag("GAN_AUGMENT_DISABLE_PLUGIN_AUTOLOAD")
        if autoload:
            self.load_entry_points()

    def load_entry_points(self) -> None:
        strict = env_flag("GAN_AUGMENT_STRICT_PLUGINS")
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the host down
                msg = f"{type(exc).__name__}: {exc}"
                self.load_errors[ep.name] = msg
                text = (
                    f"gan-augment plugin {ep.name!r} ({ep.value}) failed to import and was "
                    f"skipped: {msg}. Reinstall or uninstall it; other backends are unaffected."
                )
                if strict:
                    raise PluginError(text) from exc
                warnings.warn(text, PluginWarning, stacklevel=2)
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "unknown"
            self.register(plugin, name=ep.name, distribution=dist, version=version)

    def register(
        self,
        plugin: ModuleType | object,
        name: str | None = None,
        distribution: str = "runtime",
        version: str = "unknown",
    ) -> None:
        """Register a plugin: a backend class, or a module (or any object) with hook implementations."""
        if isinstance(plugin, type):
            name = name or getattr(plugin, "name", None)
            if not name:
                raise PluginError(f"{plugin.__name__} has no `name`: set one on the class, or pass "
                                  "register_plugin(cls, name=...).")
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        self.pm.register(as_plugin(plugin, name), name=name)
        self._dist_of[name] = (distribution, version)
        self._table = None
        try:
            self.backends()  # validate now, so a bad plugin is named when it registers
        except PluginError:
            self.pm.unregister(name=name)
            self._dist_of.pop(name, None)
            self._table = None
            raise

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._dist_of.pop(name, None)
        self._table = None

    def backends(self) -> dict[str, BackendInfo]:
        if self._table is not None:
            return self._table
        table: dict[str, BackendInfo] = {}
        for impl in self.pm.hook.gan_augment_backends.get_hookimpls():
            plugin_name = impl.plugin_name
            dist, version = self._dist_of.get(plugin_name, ("unknown", "unknown"))
            for cls in impl.function() or []:
                if not (isinstance(cls, type) and issubclass(cls, GenerativeAugmenter)):
                    raise PluginError(
                        f"plugin {plugin_name!r} returned {cls!r}, which is not a "
                        "GenerativeAugmenter subclass; return the class itself."
                    )
                bname = getattr(cls, "name", None)
                if not isinstance(bname, str) or not bname:
                    raise PluginError(f"plugin {plugin_name!r}: backend {cls.__name__} has no `name`.")
                if bname in table and table[bname].cls is not cls:
                    other = table[bname]
                    raise PluginError(
                        f"two plugins register the backend name {bname!r}: {other.plugin!r} "
                        f"({other.distribution}) and {plugin_name!r} ({dist}). Uninstall one, or "
                        "set GAN_AUGMENT_DISABLE_PLUGIN_AUTOLOAD=1 and register the one you want."
                    )
                table[bname] = BackendInfo(bname, cls, plugin_name, dist, version)
        self._table = dict(sorted(table.items()))
        return self._table

    def get(self, name: str) -> BackendInfo:
        table = self.backends()
        if name in table:
            return table[name]
        known = sorted(table)
        hint = did_you_mean(name, known)
        broken = (
            f" Plugins that failed to load: {', '.join(sorted(self.load_errors))}."
            if self.load_errors
            else ""
        )
        raise BackendNotFoundError(
            f"unknown backend {name!r}.{hint} Installed backends: "
            f"{', '.join(known) or '(none)'}.{broken} A third-party backend is installed with "
            "pip and registers itself under the 'gan_augment' entry-point group."
        )


_host: BackendHost | None = None


def get_host() -> BackendHost:
    global _host
    if _host is None:
        _host = BackendHost()
    return _host


def reset_host(autoload: bool | None = None) -> BackendHost:
    """Rebuild the host (tests, or after installing a plugin in a running process)."""
    global _host
    _host = BackendHost(autoload=autoload)
    return _host


def list_backends() -> list[str]:
    """Names of every installed backend, sorted."""
    return list(get_host().backends())


def backend_info(name: str) -> BackendInfo:
    return get_host().get(name)


def register_plugin(plugin, name: str | None = None) -> None:
    """Register a plugin at run time, as a third party's installed one would be."""
    get_host().register(plugin, name=name)


def ensure_named(cls: type) -> str:
    """``cls.name``. A class an entry point names gets its name when the host loads, so the host
    is loaded first when ``cls`` has none of its own (``from gan_augment_dcgan import DCGAN``)."""
    if "name" not in cls.__dict__:
        get_host().backends()
    return cls.name


def create(name: str, **config) -> GenerativeAugmenter:
    """Build a backend by name: ``gan_augment.create("wgan-gp", image_size=64)``."""
    return get_host().get(name).cls(**config)
