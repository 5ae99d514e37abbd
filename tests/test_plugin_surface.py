"""The smaller plugin surface: an entry point naming the class, the name it gives, the base
class's fake-batch helper and its one-line error for a conditional backend without class names."""

from __future__ import annotations

import importlib.metadata as md
import sys

import pytest
import torch

import gan_augment as ga
from gan_augment.core import backend_index, registry

CLASS_PLUGIN = '''
import gan_augment as ga


class TinyGAN(ga.AdversarialAugmenter):
    def build_generator(self):
        return ga.nets.ConvGenerator(self.config["latent_dim"], 3, 16, 4)

    def build_discriminator(self):
        return ga.nets.ConvDiscriminator(3, 16, 4)

    def discriminator_loss(self, G, D, real, labels, ctx):
        return D(self.fake_batch(G, labels, ctx, grad=False)).mean() - D(real).mean(), {}

    def generator_loss(self, G, D, labels, ctx):
        return -D(self.fake_batch(G, labels, ctx)).mean(), {}


class Named(TinyGAN):
    name = "something-else"


NOT_A_BACKEND = object
'''


@pytest.fixture
def class_entry_points(monkeypatch, tmp_path):
    """A module on sys.path and entry points naming its classes, beside the real ones."""
    def install(**eps: str):
        (tmp_path / "tiny_class_plugin.py").write_text(CLASS_PLUGIN)
        monkeypatch.syspath_prepend(str(tmp_path))
        original = md.entry_points
        ours = list(original(group=registry.ENTRY_POINT_GROUP)) + [
            md.EntryPoint(name=n, value=v, group=registry.ENTRY_POINT_GROUP) for n, v in eps.items()]

        def entry_points(**kw):  # other groups (torch's own plugins) as they are
            return ours if kw.get("group") == registry.ENTRY_POINT_GROUP else original(**kw)

        monkeypatch.setattr(registry.md, "entry_points", entry_points)
        monkeypatch.setattr(registry, "_host", None)

    yield install
    monkeypatch.undo()
    sys.modules.pop("tiny_class_plugin", None)
    registry.reset_host()


def test_an_entry_point_naming_a_class_registers_it_under_the_entry_points_name(class_entry_points):
    class_entry_points(tiny="tiny_class_plugin:TinyGAN")
    info = ga.backend_info("tiny")
    assert info.cls.__name__ == "TinyGAN" and info.cls.name == "tiny" and info.plugin == "tiny"
    model = ga.create("tiny", image_size=16)
    assert model.name == "tiny"
    model.fit(torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8), steps=1, batch_size=4, progress=False)


def test_a_class_used_before_the_host_is_built_gets_its_entry_point_name(class_entry_points):
    class_entry_points(tiny="tiny_class_plugin:TinyGAN")
    from tiny_class_plugin import TinyGAN  # the host has not loaded anything yet

    assert registry._host is None
    assert TinyGAN(image_size=16).name == "tiny"


def test_a_class_whose_name_differs_from_its_entry_point_is_one_clear_error(class_entry_points, monkeypatch):
    monkeypatch.setenv("GAN_AUGMENT_STRICT_PLUGINS", "1")
    class_entry_points(tiny="tiny_class_plugin:Named")
    with pytest.raises(ga.PluginError, match="entry point 'tiny' names Named, whose name is 'something-else'; "
                                             "drop the class's `name`"):
        registry.get_host()


def test_an_entry_point_naming_something_else_is_one_clear_error(class_entry_points, monkeypatch):
    monkeypatch.setenv("GAN_AUGMENT_STRICT_PLUGINS", "1")
    class_entry_points(tiny="tiny_class_plugin:NOT_A_BACKEND")
    with pytest.raises(ga.PluginError, match="names <class 'object'>, which is neither a GenerativeAugmenter"):
        registry.get_host()


def test_register_plugin_takes_a_class_and_needs_a_name_for_an_unnamed_one(class_entry_points):
    class_entry_points()
    from tiny_class_plugin import TinyGAN

    with pytest.raises(ga.PluginError, match="TinyGAN has no `name`: set one on the class, or pass"):
        ga.register_plugin(TinyGAN)
    ga.register_plugin(TinyGAN, name="tiny-runtime")
    assert ga.backend_info("tiny-runtime").cls is TinyGAN and TinyGAN.name == "tiny-runtime"


def test_the_backend_index_fingerprint_follows_a_class_entry_points_module():
    assert backend_index._module_mtime("gan_augment_dcgan:DCGAN") is not None
    assert backend_index._module_mtime("gan_augment_dcgan:DCGAN") == backend_index._module_mtime("gan_augment_dcgan")


def _ctx(seed: int) -> ga.StepContext:
    return ga.StepContext(rng=torch.Generator().manual_seed(seed), step=0, total_steps=1, device=torch.device("cpu"))


def test_fake_batch_draws_from_the_steps_rng_and_gives_conditional_backends_the_labels():
    model = ga.create("cwgan-gp", image_size=16, class_names=["a", "b"], width=8, latent_dim=16, embed_dim=4)
    G = model.generator
    labels = torch.tensor([0, 1, 1])
    a, b = model.fake_batch(G, labels, _ctx(5)), model.fake_batch(G, labels, _ctx(5))
    assert a.shape == (3, 3, 16, 16) and a.requires_grad and torch.equal(a, b)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(model.fake_batch(G, labels, _ctx(5), grad=False), a.detach())
    z = model.sample_latent(3, labels, generator=torch.Generator().manual_seed(5))
    assert torch.equal(G(z, labels), a)  # exactly the lines it replaces
    assert not model.fake_batch(G, labels, _ctx(5), grad=False).requires_grad
    assert not torch.equal(model.fake_batch(G, torch.tensor([1, 0, 0]), _ctx(5)), a)


def test_fake_batch_of_an_unconditional_backend_ignores_the_labels_values():
    model = ga.create("wgan-gp", image_size=16, width=8, latent_dim=16)
    G = model.generator
    a = model.fake_batch(G, torch.zeros(4, dtype=torch.long), _ctx(1))
    b = model.fake_batch(G, torch.ones(4, dtype=torch.long), _ctx(1))
    assert torch.equal(a, b) and torch.equal(a, G(model.sample_latent(4, None, torch.Generator().manual_seed(1))))


@pytest.mark.parametrize("backend", ["cwgan-gp", "bagan", "bagan-gp"])
def test_a_conditional_backend_without_class_names_fails_in_the_base_class_in_one_line(backend):
    model = ga.create(backend, image_size=16)
    for build in ("generator", "discriminator"):
        with pytest.raises(ga.ConfigError, match=f"^{backend} is conditional and needs the class names: pass "
                                                 r"class_names=\[\.\.\.\] or call fit\(\) on labelled data") as e:
            getattr(model, build)
        assert "\n" not in str(e.value)
