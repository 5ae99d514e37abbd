"""Training throughput of the shared Trainer against plain PyTorch loops of the same networks.

All run in this process, interleaved (A B C A B C ...), on the same data held in memory. The
trainer runs at its defaults (precision="auto", channels_last="auto") except DiffAugment, which is
off so that every loop computes the same losses. The plain loops are bare fp32 and bare bf16
autocast loops over the backend's own losses. The table reports real images seen by the
discriminator per second (median over rounds) and the ratios trainer / plain (>= 1.0: the trainer
is at least as fast). Run:

    python benchmarks/train_throughput.py --backends dcgan wgan-gp --image-size 64 --width 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

import gan_augment as ga
from gan_augment.training.config import StepContext, pick_device
from gan_augment.training.loop import Trainer


def plain_dcgan_loop(G, D, images, steps, batch, latent_dim, device):
    """pytorch/examples-style DCGAN loop (one G forward per step reused for both updates, no
    instance noise or flipping): a reference for what the DCGAN recipe itself costs."""
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    n = len(images)
    for _step in range(steps):
        idx = torch.randint(0, n, (batch,))
        real = images[idx].to(device).float().div_(127.5).sub_(1)
        z = torch.randn(batch, latent_dim, device=device)
        fake = G(z)
        d_loss = (F.binary_cross_entropy_with_logits(D(real), torch.full((batch, 1), 0.9, device=device))
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(batch, 1, device=device)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(D(fake), torch.ones(batch, 1, device=device))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()


def plain_backend_loop(model, G, D, images, labels, steps, batch, n_critic, device, amp=None):
    """A bare loop over the backend's own losses: no logging, checkpoints, schedules or EMA;
    ``amp`` (e.g. torch.bfloat16) runs the losses under that autocast."""
    from gan_augment.training.precision import autocast
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.9))
    rng = torch.Generator(device=device).manual_seed(0)
    n = len(images)
    for step in range(steps):
        ctx = StepContext(rng, step, steps, device)
        for _ in range(n_critic):
            idx = torch.randint(0, n, (batch,))
            real = images[idx].to(device).float().div_(127.5).sub_(1)
            lab = labels[idx].to(device)
            with autocast(device, amp):
                d_loss, _ = model.discriminator_loss(G, D, real, lab, ctx)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        D.requires_grad_(False)
        with autocast(device, amp):
            g_loss, _ = model.generator_loss(G, D, lab, ctx)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        D.requires_grad_(True)
        opt_g.step()


def matmul_peak(n: int = 1024, repeats: int = 5, dtype=torch.float32) -> float:
    """FLOP/s of a large matmul in ``dtype`` on this machine, now: the practical peak to compare with."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(measure(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def step_flops(name, model_config, data, batch) -> int:
    """FLOPs of one generator step (n_critic discriminator updates + one generator update),
    counted by torch.utils.flop_counter on a 1-step Trainer run."""
    from torch.utils.flop_counter import FlopCounterMode

    m = ga.create(name, **model_config)
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()  # its module hooks break autograd.grad (gradient penalty)
    t = Trainer(m, steps=1, batch_size=batch, progress=False, sample_every=0, checkpoint_every=0)
    t._setup(data)
    m.prepare(t.prepare_context())
    t.prepared = True
    t.cfg.resume = False
    with counter:
        _one_step(t)
    return counter.get_total_flops()


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker: count every op under 'Global' only."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _one_step(t: Trainer) -> None:
    """Exactly the trainer's per-step work, without its bookkeeping."""
    m, G, D = t.model, t.model.generator, t.model.discriminator
    ctx = StepContext(t.rng, 0, 1, t.device)
    for i in range(t.cfg.n_critic):
        real, labels = t.batch(i)
        loss, _ = m.discriminator_loss(G, D, real, labels, ctx)
        t.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        t.opt_d.step()
    D.requires_grad_(False)
    loss, _ = m.generator_loss(G, D, labels, ctx)
    t.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    D.requires_grad_(True)
    t.opt_g.step()


def measure(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_backend(name, data, args, device):
    images = data.tensor()
    labels = torch.as_tensor(data.labels)
    torch.manual_seed(0)
    extra = {"ae_steps": args.bagan_ae_steps} if name.startswith("bagan") else {}
    model = ga.create(name, image_size=args.image_size, width=args.width, class_names=data.class_names
                      if ga.backend_info(name).conditional else [data.class_names[0]], **extra)
    n_critic = type(model).train_defaults.get("n_critic", 1)
    per_round = args.steps * args.batch * n_critic  # real images through D per round
    trainer_times, plain_times, bf16_times, examples_times = [], [], [], []
    variant_times = {v: [] for v in args.variant}

    def run_trainer(**overrides):
        m = ga.create(name, **model.get_config())
        Trainer(m, steps=args.steps, batch_size=args.batch, progress=False, log_every=args.steps,
                sample_every=0, checkpoint_every=0, device=str(device), diffaugment="none",
                **overrides).fit(data)

    def run_plain(amp=None):
        m = ga.create(name, **model.get_config())
        G, D = m.generator.to(device), m.discriminator.to(device)
        m.prepare(ga.PrepareContext(images, labels, device, 0, 1, lambda n, what: iter(range(n)),
                                    contextlib.nullcontext))
        plain_backend_loop(m, G, D, images, labels, args.steps, args.batch, n_critic, device, amp)

    def run_bf16():
        run_plain(torch.bfloat16)

    def run_examples():
        m = ga.create(name, **model.get_config())
        plain_dcgan_loop(m.generator.to(device), m.discriminator.to(device), images, args.steps,
                         args.batch, m.config["latent_dim"], device)

    runs = [(run_trainer, trainer_times), (run_plain, plain_times)]
    if not args.no_bf16:
        runs.append((run_bf16, bf16_times))
    if name == "dcgan":
        runs.append((run_examples, examples_times))
    for v in args.variant:  # e.g. "channels_last=false": the trainer with one setting changed
        key, value = v.split("=", 1)
        setting = {key: json.loads(value)}
        runs.append((lambda s=setting: run_trainer(**s), variant_times[v]))
    for fn, _ in runs:  # warm-up
        fn()
    for _ in range(args.rounds):
        for fn, times in runs:
            times.append(measure(fn))
    t, p = statistics.median(trainer_times), statistics.median(plain_times)
    b = statistics.median(bf16_times) if bf16_times else float("nan")
    e = statistics.median(examples_times) if examples_times else None
    flops = step_flops(name, model.get_config(), data, args.batch)
    return {"backend": name, "n_critic": n_critic, "trainer_img_s": per_round / t,
            "trainer_flop_s": flops * args.steps / t,
            "plain_img_s": per_round / p, "ratio": p / t, "bf16_img_s": per_round / b, "ratio_bf16": b / t,
            "examples_img_s": per_round / e if e else None,
            "variants": {v: per_round / statistics.median(ts) for v, ts in variant_times.items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="+", default=["dcgan"])
    p.add_argument("--data", default="../shared/data/pbc_neutrophil_64.npz")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-bf16", action="store_true", help="skip the plain bf16 loop (slow where emulated)")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=JSON",
                   help="also time the trainer with one setting changed, e.g. channels_last=false")
    p.add_argument("--bagan-ae-steps", type=int, default=20,
                   help="BAGAN's autoencoder stage runs in both loops; keep it short so steps dominate")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    device = pick_device(args.device)
    data = ga.load_dataset(args.data, split="train", image_size=args.image_size)
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"image={args.image_size}px width={args.width} batch={args.batch} steps/round={args.steps} rounds={args.rounds}")
    from gan_augment.training.precision import describe, resolve_precision

    print(f"trainer precision: {describe(resolve_precision('auto', device), 'auto', device)}")
    peak, peak_bf16 = matmul_peak(), matmul_peak(dtype=torch.bfloat16)
    print(f"matmul peak (1024x1024, measured now): float32 {peak / 1e9:.1f} GFLOP/s, "
          f"bfloat16 {peak_bf16 / 1e9:.1f} GFLOP/s")
    print("| backend | n_critic | trainer img/s | plain fp32 loop img/s | plain bf16 loop img/s | "
          "trainer / plain fp32 | trainer / plain bf16 | pytorch/examples-style loop img/s | "
          "trainer GFLOP/s | share of fp32 matmul peak | share of bf16 matmul peak |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.backends:
        r = bench_backend(name, data, args, device)
        ex = f"{r['examples_img_s']:.1f}" if r["examples_img_s"] else "n/a"
        print(f"| {r['backend']} | {r['n_critic']} | {r['trainer_img_s']:.1f} | {r['plain_img_s']:.1f} | "
              f"{r['bf16_img_s']:.1f} | {r['ratio']:.3f} | {r['ratio_bf16']:.3f} | {ex} | "
              f"{r['trainer_flop_s'] / 1e9:.2f} | {r['trainer_flop_s'] / peak:.1%} | "
              f"{r['trainer_flop_s'] / peak_bf16:.1%} |", flush=True)
        for v, ips in r["variants"].items():
            print(f"|   {r['backend']}: trainer with {v} | | {ips:.1f} img/s, {ips / r['trainer_img_s']:.3f}x "
                  "the trainer at its defaults | | | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
