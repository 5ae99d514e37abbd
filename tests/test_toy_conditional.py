"""Must-show: after a short CPU training on dark discs vs bright squares, class-k samples of the
conditional backends are recognised as class k by a simple rule (mean brightness) >= 90% of the time."""

import pytest
import torch

import gan_augment as ga
from gan_augment.testing.toy import toy_two_class_data

RUNS = {
    # backend: (model config, training config); each trains in well under 10 s on one CPU core
    "cwgan-gp": ({"width": 8, "latent_dim": 16, "embed_dim": 4}, {"steps": 100, "n_critic": 2, "lr_g": 1e-3, "lr_d": 1e-3}),
    "bagan": ({"width": 8, "latent_dim": 16, "ae_steps": 200, "ae_batch_size": 32}, {"steps": 30}),
}


def brightness_rule(x: torch.Tensor) -> torch.Tensor:
    """Class 1 ("bright") when the mean pixel is above 0.5, else class 0 ("dark")."""
    return (x.mean(dim=(1, 2, 3)) > 0.5).long()


def test_the_rule_separates_the_real_classes():
    data = toy_two_class_data(32, 16, 1, seed=0)
    x = data.tensor().float() / 255
    assert torch.equal(brightness_rule(x), torch.as_tensor(data.labels))


@pytest.mark.parametrize("backend,precision", [(b, "auto") for b in sorted(RUNS)] + [("cwgan-gp", "bf16")])
def test_class_k_samples_look_like_class_k(backend, precision):
    """bf16: the gradient penalty runs under autocast with its norm in fp32, and still learns."""
    model_cfg, train_cfg = RUNS[backend]
    torch.manual_seed(0)
    data = toy_two_class_data(32, 16, 1, seed=0)
    m = ga.create(backend, image_size=16, channels=1, **model_cfg)
    m.fit(data, batch_size=32, progress=False, device="cpu", seed=0, precision=precision, **train_cfg)
    g = torch.Generator().manual_seed(1)
    for k, name in enumerate(data.class_names):
        x = m.sample(200, labels=name, generator=g)
        acc = (brightness_rule(x) == k).float().mean().item()
        assert acc >= 0.9, f"{backend}: only {acc:.0%} of class {name!r} samples look like {name!r}"
