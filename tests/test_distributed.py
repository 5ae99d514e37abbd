"""Two processes on CPU with gloo under torchrun: ranks agree, and resume is exact."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gan_augment.core.serialization import read_safetensors

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")

SCRIPT = """
import os, sys, torch, torch.distributed as dist
import gan_augment as ga
from gan_augment.training.distributed import distributed_from_env
from gan_augment.core.serialization import atomic_save_safetensors
out, steps, stop_at, resume = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
with distributed_from_env():
    rank = dist.get_rank()
    torch.manual_seed(100 + rank)  # different init per rank: the trainer must broadcast rank 0's
    m = ga.create("dcgan", image_size=16, width=8, latent_dim=8)
    data = ga.load_dataset(sys.argv[5], classes=["disc"])
    t = ga.Trainer(m, steps=steps, stop_at=stop_at or None, out_dir=out, batch_size=8, progress=False,
                   sample_every=0, checkpoint_every=2, resume=resume, log_every=1)
    t.fit(data)
    sd = {**{"G." + k: v for k, v in m.generator.state_dict().items()},
          **{"D." + k: v for k, v in m.discriminator.state_dict().items()}}
    atomic_save_safetensors(sd, os.path.join(out, f"rank{rank}.safetensors"))
"""


def torchrun(tmp_path, out, steps, stop_at, resume, npz):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           str(script), str(out), str(steps), str(stop_at), "1" if resume else "0", str(npz)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def same(a, b):
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_two_process_gloo_training_agrees_across_ranks_and_resumes_exactly(tmp_path, tiny_npz):
    straight, staged = tmp_path / "straight", tmp_path / "staged"
    torchrun(tmp_path, straight, 4, 0, False, tiny_npz)
    r0, r1 = read_safetensors(straight / "rank0.safetensors"), read_safetensors(straight / "rank1.safetensors")
    assert same(r0, r1), "ranks disagree after training"
    torchrun(tmp_path, staged, 4, 2, False, tiny_npz)
    torchrun(tmp_path, staged, 4, 0, True, tiny_npz)
    s0, s1 = read_safetensors(staged / "rank0.safetensors"), read_safetensors(staged / "rank1.safetensors")
    assert same(s0, s1), "ranks disagree after resume"
    assert same(r0, s0), "2 + resume + 2 steps differ from 4 steps straight"
    assert (staged / "checkpoint.safetensors").exists() and (staged / "metrics.jsonl").exists()
    ckpt = read_safetensors(staged / "checkpoint.safetensors")
    assert {"rng.0", "rng.1"} <= set(ckpt)
