"""`gan-augment models` says in words where each short name loads from, and `info` says what a
metric's floor is and which way is better."""

from __future__ import annotations

import pytest

from gan_augment.cli import main
from gan_augment.cli.hub import availability, print_metrics

ENTRY = {"repo_id": "lab/cells", "revision": "0123456789abcdef0123456789abcdef01234567"}


@pytest.mark.parametrize("entry,bundled,want", [
    ({**ENTRY, "revision": None}, True, "bundled (offline); not on the Hugging Face Hub yet"),
    (ENTRY, True, "bundled (offline); also on the Hub as lab/cells@0123456789ab"),
    (ENTRY, False, "on the Hub as lab/cells@0123456789ab (downloaded on first use)"),
    ({**ENTRY, "revision": None}, False, "listed but neither bundled nor pushed: cannot load"),
])
def test_availability_in_words(entry, bundled, want):
    assert availability(entry, bundled) == want


def test_models_lists_the_bundled_short_names_plainly(capsys, monkeypatch):
    monkeypatch.delenv("GAN_AUGMENT_HUB_DIR", raising=False)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln and not ln.startswith("Use ")}
    assert {"neutrophil-wgan-gp", "pbc-cwgan-gp"} <= set(rows)
    for name in ("neutrophil-wgan-gp", "pbc-cwgan-gp"):  # hub/index.json pins no revision for them yet
        assert "bundled (offline); not on the Hugging Face Hub yet" in rows[name]
    assert "unpushed" not in out


def test_info_explains_the_floor_and_the_direction(capsys, monkeypatch):
    monkeypatch.delenv("GAN_AUGMENT_HUB_DIR", raising=False)
    assert main(["info", "neutrophil-wgan-gp"]) == 0
    out = capsys.readouterr().out
    assert "floor = the same metric for real images (real TRAIN images against the same test images)" in out
    fid = next(ln.split() for ln in out.splitlines() if ln.strip().startswith("fid "))
    assert fid[0] == "fid" and fid[-1] == "lower" and float(fid[1]) > float(fid[2])  # value, floor


def test_print_metrics_rows_line_up_and_take_plain_numbers(capsys):
    print_metrics({"fid": {"value": 12.5, "floor": 3.0}, "kid": 0.03, "recall": {"value": 0.5, "floor": None}})
    lines = capsys.readouterr().out.splitlines()
    table = lines[next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["metric"]):]
    assert [r.split()[:3] for r in table] == [["metric", "model", "floor"], ["fid", "12.5", "3"],
                                              ["kid", "0.03", "-"], ["recall", "0.5", "-"]]
    assert table[1].split()[-1] == "lower" and table[3].split()[-1] == "higher"
    assert len({r.index(r.split()[1]) for r in table}) == 1  # the value column is aligned
