"""Sampling throughput of a loaded model (``aug.sample``, at its "auto" precision) against the raw
generator forward pass in fp32 and under bf16 autocast, and peak memory of each, measured side by
side in one process.

    python benchmarks/sampling_throughput.py --model runs/neutrophil-wgan-gp -n 1024
    python benchmarks/sampling_throughput.py --backend wgan-gp --width 32      # untrained, same cost
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
import warnings

import torch

import gan_augment as ga


def timed(fn, rounds):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default="wgan-gp")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("-n", type=int, default=1024)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", choices=("raw", "raw_bf16", "api"), help=argparse.SUPPRESS)  # peak-RSS child
    args = p.parse_args()
    warnings.simplefilter("ignore")
    if args.model:
        aug = ga.from_pretrained(args.model)
    else:
        aug = ga.create(args.backend, image_size=args.image_size, width=args.width, class_names=["x"])
    G = aug.sampling_module().eval()
    dim = aug.config["latent_dim"]

    @torch.no_grad()
    def raw(dtype=None):
        for s in range(0, args.n, args.batch):
            m = min(args.batch, args.n - s)
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                x = G(torch.randn(m, dim)).float()
            ((x.clamp(-1, 1) + 1) / 2).cpu()

    def raw_bf16():
        raw(torch.bfloat16)

    def api():
        aug.sample(args.n, generator=torch.Generator().manual_seed(0), batch_size=args.batch)

    if args.only:  # child process: run one path once, report its peak resident memory
        {"raw": raw, "raw_bf16": raw_bf16, "api": api}[args.only]()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return
    raw(), raw_bf16(), api()  # warm-up
    rows = []
    for key, name, fn in (("raw", "raw generator forward, fp32", raw),
                          ("raw_bf16", "raw generator forward, bf16 autocast", raw_bf16),
                          ("api", "aug.sample()", api)):
        t = timed(fn, args.rounds)
        child = subprocess.run([sys.executable, *sys.argv, "--only", key], capture_output=True, text=True)
        peak = float(child.stdout.strip().splitlines()[-1]) if child.returncode == 0 else float("nan")
        rows.append((name, args.n / t, peak))
    base = rows[0][1]
    print(f"{aug.name} {aug.image_shape}, n={args.n}, batch={args.batch}, threads={torch.get_num_threads()}, "
          f"max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print("| path | images/s | ratio vs raw fp32 | ratio vs raw bf16 | peak RSS MiB (a fresh process running it once) |")
    print("| --- | --- | --- | --- | --- |")
    for name, ips, mib in rows:
        print(f"| {name} | {ips:.1f} | {ips / base:.3f} | {ips / rows[1][1]:.3f} | {mib:.1f} |")


if __name__ == "__main__":
    main()
