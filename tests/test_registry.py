"""The plugin host: discovery, isolation of broken plugins, duplicates, unknown names, runtime plugins."""

from __future__ import annotations

import importlib.metadata as md
import sys
import types

import pytest

import gan_augment as ga
from gan_augment.cli import main
from gan_augment.core import registry


@pytest.fixture
def fresh_host():
    host = registry.reset_host()
    yield host
    registry.reset_host()


def throwaway_plugin(backend_name: str, module_name: str = "throwaway_plugin"):
    class Throwaway(ga.AdversarialAugmenter):
        name = backend_name

        def build_generator(self):
            return ga.nets.ConvGenerator(self.config["latent_dim"], 3, 16, 4)

        def build_discriminator(self):
            return ga.nets.ConvDiscriminator(3, 16, 4)

        def discriminator_loss(self, G, D, real, labels, ctx):
            return D(real).mean(), {}

        def generator_loss(self, G, D, labels, ctx):
            return -D(G(self.sample_latent(2, None, generator=ctx.rng))).mean(), {}

    mod = types.ModuleType(module_name)
    mod.Throwaway = Throwaway

    @ga.hookimpl
    def gan_augment_backends():
        return [Throwaway]

    mod.gan_augment_backends = gan_augment_backends
    return mod


def test_builtin_backends_load_through_entry_points(fresh_host):
    names = ga.list_backends()
    assert "dcgan" in names and "wgan-gp" in names
    info = ga.backend_info("dcgan")
    assert info.distribution == "gan-augment"  # came from the entry point, not a core import
    assert not info.conditional


def test_runtime_plugin_is_listed_and_shown_by_cli(fresh_host, capsys):
    ga.register_plugin(throwaway_plugin("throwaway-gan"), name="throwaway")
    assert "throwaway-gan" in ga.list_backends()
    model = ga.create("throwaway-gan", image_size=16)
    assert model.sample(2).shape == (2, 3, 16, 16)
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "throwaway-gan" in out and "dcgan" in out


def test_two_plugins_claiming_one_name_is_an_error_naming_both(fresh_host):
    ga.register_plugin(throwaway_plugin("same-name", "plugin_a"), name="plugin_a")
    with pytest.raises(ga.PluginError) as err:
        ga.register_plugin(throwaway_plugin("same-name", "plugin_b"), name="plugin_b")
    assert "plugin_a" in str(err.value) and "plugin_b" in str(err.value) and "same-name" in str(err.value)
    assert "same-name" in ga.list_backends()  # the first registration still works


def test_unknown_name_lists_known_names_and_closest_match(fresh_host):
    with pytest.raises(ga.BackendNotFoundError) as err:
        ga.create("wgan_gp")
    msg = str(err.value)
    assert "Did you mean 'wgan-gp'" in msg and "dcgan" in msg


def _fake_entry_points(monkeypatch, tmp_path, extra_modules: dict[str, str]):
    """Add modules on sys.path and entry points for them beside the real ones."""
    for mod_name, source in extra_modules.items():
        (tmp_path / f"{mod_name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = list(md.entry_points(group=registry.ENTRY_POINT_GROUP))
    fake = [md.EntryPoint(name=m, value=m, group=registry.ENTRY_POINT_GROUP) for m in extra_modules]
    monkeypatch.setattr(registry.md, "entry_points", lambda group=None: real + fake)


def test_plugin_that_raises_at_import_is_named_and_others_still_load(monkeypatch, tmp_path):
    _fake_entry_points(monkeypatch, tmp_path, {"broken_gan_plugin": "raise RuntimeError('boom at import')\n"})
    monkeypatch.delenv("GAN_AUGMENT_STRICT_PLUGINS", raising=False)
    with pytest.warns(registry.PluginWarning, match="broken_gan_plugin.*boom at import"):
        host = registry.reset_host()
    try:
        assert "dcgan" in host.backends()
        assert "broken_gan_plugin" in host.load_errors
        with pytest.raises(ga.BackendNotFoundError, match="failed to load: .*broken_gan_plugin"):
            host.get("broken")
    finally:
        sys.modules.pop("broken_gan_plugin", None)
        registry.reset_host()


def test_strict_mode_turns_a_broken_plugin_into_an_error(monkeypatch, tmp_path):
    _fake_entry_points(monkeypatch, tmp_path, {"broken_gan_plugin2": "raise ImportError('missing dep')\n"})
    monkeypatch.setenv("GAN_AUGMENT_STRICT_PLUGINS", "1")
    try:
        with pytest.raises(ga.PluginError, match="broken_gan_plugin2"):
            registry.reset_host()
    finally:
        monkeypatch.delenv("GAN_AUGMENT_STRICT_PLUGINS")
        registry.reset_host()


def test_autoload_can_be_disabled(monkeypatch):
    monkeypatch.setenv("GAN_AUGMENT_DISABLE_PLUGIN_AUTOLOAD", "1")
    try:
        host = registry.reset_host()
        assert "dcgan" not in host.backends()
    finally:
        monkeypatch.delenv("GAN_AUGMENT_DISABLE_PLUGIN_AUTOLOAD")
        registry.reset_host()


def test_plugin_returning_a_non_backend_is_rejected_at_registration(fresh_host):
    mod = types.ModuleType("bad_return")

    @ga.hookimpl
    def gan_augment_backends():
        return [object]

    mod.gan_augment_backends = gan_augment_backends
    with pytest.raises(ga.PluginError, match="not a GenerativeAugmenter"):
        ga.register_plugin(mod, name="bad_return")
    assert "dcgan" in ga.list_backends()


def test_unknown_config_key_names_the_closest(fresh_host):
    with pytest.raises(ga.ConfigError, match="Did you mean 'image_size'"):
        ga.create("dcgan", imagesize=64)
