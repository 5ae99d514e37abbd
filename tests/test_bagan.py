"""BAGAN specifics: autoencoder initialisation, class-balanced fake labels, saved latent statistics, GP variant."""

import pytest
import torch

import gan_augment as ga
from gan_augment.core.folder import load_folder
from gan_augment.testing.toy import toy_two_class_data
from gan_augment.training.config import StepContext
from gan_augment.training.loop import Trainer


def _bagan(**kw):
    cfg = {"image_size": 16, "channels": 1, "width": 8, "latent_dim": 8, "ae_steps": 15, "ae_batch_size": 8}
    return ga.create(kw.pop("backend", "bagan"), **{**cfg, **kw})


def _prepared(model, data):
    trainer = Trainer(model, steps=1, batch_size=8, progress=False, device="cpu")
    trainer._setup(data)
    g0 = {k: v.clone() for k, v in model.generator.decoder.state_dict().items()}
    model.prepare(trainer.prepare_context())
    return trainer, g0


@pytest.mark.parametrize("backend", ["bagan", "bagan-gp"])
def test_generator_is_the_decoder_and_discriminator_body_is_the_encoder(backend):
    torch.manual_seed(0)
    m = _bagan(backend=backend)
    _, g0 = _prepared(m, toy_two_class_data(8, 16, 1))
    dec = m.generator.decoder.state_dict()
    assert any(not torch.equal(g0[k], dec[k]) for k in g0 if g0[k].is_floating_point())  # trained
    enc, body = m.encoder.features.state_dict(), m.discriminator.features.state_dict()
    assert enc.keys() == body.keys() and all(torch.equal(enc[k], body[k]) for k in enc)
    if backend == "bagan":
        assert m.discriminator.head.out_features == m.num_classes + 1 and m.discriminator.embed is None
    else:  # BAGAN-GP: label-embedded autoencoder and a projection critic
        assert m.config["gp"] and m.generator.label_embed is not None
        assert m.discriminator.head.out_features == 1 and m.discriminator.embed.num_embeddings == 2


def test_fake_labels_are_class_balanced_even_when_the_data_is_not():
    torch.manual_seed(0)
    m = _bagan(class_names=["big", "rare"])
    G, D = m.generator, m.discriminator
    seen = []
    real_forward = G.forward

    def spy(eps, labels):
        seen.append(labels.clone())
        return real_forward(eps, labels)

    G.forward = spy
    labels = torch.zeros(64, dtype=torch.long)  # a batch of the majority class only
    ctx = StepContext(torch.Generator().manual_seed(0), 0, 10, torch.device("cpu"))
    for _ in range(10):
        m.generator_loss(G, D, labels, ctx)
        m.discriminator_loss(G, D, torch.zeros(64, 1, 16, 16), labels, ctx)
    share_rare = torch.cat(seen).float().mean().item()
    assert 0.45 < share_rare < 0.55, share_rare


def test_latent_statistics_travel_with_the_saved_model(tmp_path):
    torch.manual_seed(0)
    data = toy_two_class_data(8, 16, 1)
    m = _bagan().fit(data, steps=2, batch_size=8, progress=False, device="cpu", out_dir=str(tmp_path / "run"))
    state = m.state_dict()
    assert {"class_means", "class_covs", "class_chol"} <= set(state)
    assert not torch.equal(state["class_means"], torch.zeros_like(state["class_means"]))  # fitted, not the init
    loaded = load_folder(tmp_path / "run")
    for key in ("class_means", "class_covs", "class_chol"):
        assert torch.equal(loaded.state_dict()[key], state[key])
    # class-k samples come from class k's Gaussian: same noise, different class, different image
    g = torch.Generator
    a = loaded.sample(4, labels=0, generator=g().manual_seed(1))
    b = loaded.sample(4, labels=1, generator=g().manual_seed(1))
    assert not torch.equal(a, b)


def test_resume_does_not_rerun_the_autoencoder(tmp_path):
    torch.manual_seed(0)
    data = toy_two_class_data(8, 16, 1)
    common = {"steps": 4, "batch_size": 8, "progress": False, "device": "cpu", "out_dir": str(tmp_path)}
    _bagan().fit(data, stop_at=2, **common)
    m = _bagan()
    m.fit(data, resume=True, **common)
    assert m.ae_history == [] and m.encoder is None  # statistics came from the checkpoint


@pytest.mark.parametrize("bad, match", [({"ae_loss": "huber"}, "ae_loss"), ({"ae_steps": -1}, "ae_steps"),
                                        ({"gp": True, "disc_norm": "batch"}, "gradient penalty")])
def test_bad_config_is_a_clear_error(bad, match):
    with pytest.raises(ga.ConfigError, match=match):
        _bagan(**bad)


def test_needs_class_names_before_building_networks():
    with pytest.raises(ga.ConfigError, match="class_names"):
        _bagan().generator  # noqa: B018


def test_bagan_gp_critic_loss_ignores_a_per_class_offset_of_the_critic():
    """The penalty bounds D's gradient in x, not a class-dependent constant b[y]; with imbalanced
    real labels and balanced fake ones, E[b(y_fake)] - E[b(y_real)] is unbounded. Fakes of the real
    batch's own classes cancel it: the critic loss and its gradient do not see b."""
    torch.manual_seed(0)
    m = _bagan(backend="bagan-gp", class_names=["big", "rare"])
    G = m.generator

    class OffsetCritic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([0.0, 5.0]))
            self.w = torch.nn.Parameter(torch.full((1, 1, 16, 16), 0.01))

        def forward(self, x, y):
            return (x * self.w).flatten(1).sum(1) + self.bias[y]

    D = OffsetCritic()
    labels = torch.tensor([0] * 15 + [1])  # imbalanced, like a rare class
    ctx = StepContext(torch.Generator().manual_seed(0), 0, 10, torch.device("cpu"))
    loss, logs = m.discriminator_loss(G, D, torch.zeros(16, 1, 16, 16), labels, ctx)
    loss.backward()
    assert D.bias.grad is not None and torch.allclose(D.bias.grad, torch.zeros(2), atol=1e-6)
    with torch.no_grad():
        D.bias.add_(torch.tensor([100.0, -100.0]))
    again, _ = m.discriminator_loss(G, D, torch.zeros(16, 1, 16, 16), labels,
                                    StepContext(torch.Generator().manual_seed(0), 0, 10, torch.device("cpu")))
    assert again.item() == pytest.approx(loss.item(), abs=1e-4)
