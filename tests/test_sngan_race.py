"""benchmarks/generator_race.py in seconds: tiny widths, budgets of a few CPU seconds, toy data
shaped like the PBC files; results are keyed, so a second run only trains the new budget."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from gan_augment.testing.toy import toy_two_class_data

ROOT = Path(__file__).parents[1]


def load_race():
    spec = importlib.util.spec_from_file_location("generator_race", ROOT / "benchmarks" / "generator_race.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def write_toy(path, n, splits):
    d = toy_two_class_data(n, 64, 3, classes=("basophil", "neutrophil"))
    images = d.tensor().permute(0, 2, 3, 1).numpy()
    labels = np.asarray(d.labels)
    split = np.array([splits[i % len(splits)] for i in range(len(labels))])
    np.savez(path, images=images, labels=labels, class_names=np.array(d.class_names), split=split)


def test_race_smoke_is_resumable_and_writes_table_and_chart(tmp_path, capsys):
    race = load_race()
    write_toy(tmp_path / "train.npz", 20, ["train"])
    write_toy(tmp_path / "eval.npz", 12, ["val", "test"])
    common = ["--out", str(tmp_path / "race"), "--data", str(tmp_path / "train.npz"), "--eval-data",
              str(tmp_path / "eval.npz"), "--sizes", "32", "--width", "4", "--fakes", "8", "--threads", "1",
              "--candidates", "sngan,sngan-finetune", "--parent-minutes", "0.01", "--chunk-seconds", "1", "--quiet"]
    assert race.main([*common, "--budgets", "0.03"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "race" / "results.jsonl").read_text().splitlines()]
    assert {(r["candidate"], r["budget"]) for r in rows} == {("real", 0), ("training-images", 0), ("pbc-hard-cwgan-gp", 0),
                                                             ("sngan", 0.03), ("sngan-finetune", 0.03)}
    ft = next(r for r in rows if r["candidate"] == "sngan-finetune")
    assert ft["parent_cpu_min"] >= 0.01 and ft["cpu_min"] >= 0.03 and ft["parent_steps"] >= 1
    assert all(np.isfinite(r["basophil_fid"]) and 0 <= r["near_copy_rate"] <= 1 for r in rows if r["candidate"] != "real")
    first_steps = next(r["steps"] for r in rows if r["candidate"] == "sngan")

    assert race.main([*common, "--budgets", "0.03,0.06"]) == 0  # keyed: only the new budget trains
    rows = [json.loads(x) for x in (tmp_path / "race" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 7
    later = next(r for r in rows if r["candidate"] == "sngan" and r["budget"] == 0.06)
    assert later["steps"] > first_steps  # continued from the checkpoint kept between budgets
    child = json.loads((tmp_path / "race" / "32px" / "sngan-finetune" / "budget_0.06" / "config.json").read_text())
    assert child["training"]["parent"]["freeze_d"] == 1
    assert (tmp_path / "race" / "race_32px.png").stat().st_size > 0
    assert "| 32 | sngan-finetune | 0 | 0.06 |" in (tmp_path / "race" / "race.md").read_text()

    # --rescore: a row stored before a metric existed gets it, its training figures kept
    path = tmp_path / "race" / "results.jsonl"
    old = [json.loads(x) for x in path.read_text().splitlines()]
    for r in old:
        r.pop("basophil_coverage")
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    assert race.main([*common, "--budgets", "0.03,0.06", "--rescore"]) == 0
    again = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(again) == 7 and all(0 <= r["basophil_coverage"] <= 1 for r in again)
    assert [r["steps"] for r in again if "steps" in r] == [r["steps"] for r in old if "steps" in r]

    # a second seed: its own run folder, no second floor or reference rows, a row in the seeds table
    seed1 = [a if a != "sngan,sngan-finetune" else "sngan" for a in common]
    assert race.main([*seed1, "--budgets", "0.03", "--seed", "1"]) == 0
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(rows) == 8 and (tmp_path / "race" / "32px" / "sngan-seed1" / "budget_0.03" / "config.json").exists()
    assert "| 32 | sngan | 0.03 | 2 |" in (tmp_path / "race" / "race.md").read_text()
    from PIL import Image

    sheet = Image.open(tmp_path / "race" / "race_32px_basophils_0.06min.png")
    assert sheet.size[1] == 3 * (32 + 2) + 2  # real, sngan, sngan-finetune (seed 1 has no 0.06 model)
    assert Image.open(tmp_path / "race" / "race_32px_basophils_0.03min.png").size[1] == 4 * (32 + 2) + 2


def test_training_images_row_scores_the_data_in_its_flips_and_turns(tmp_path):
    """The reference row takes each class's images in 8 orientations, the unturned ones first,
    so a small class is seen 8 ways and a large one needs no turns."""
    import torch

    race = load_race()

    class Recorder(race.Judge):
        def __init__(self):
            self.fakes, self.seen = 5, {}

        def score_images(self, images):
            self.seen = images
            return {}

    d = toy_two_class_data(4, 8, 3, classes=("basophil", "neutrophil"))
    x, y = d.tensor(), np.asarray(d.labels)
    judge = Recorder()
    judge.names = list(d.class_names)
    judge.score_training_images(d)
    own = x[y == 0]
    assert len(judge.seen[0]) == min(5, 8 * len(own))
    assert torch.equal(judge.seen[0][: len(own)], own)  # the unturned images first
    assert torch.equal(judge.seen[0][len(own)], torch.rot90(own[0], 1, dims=(-2, -1)))
