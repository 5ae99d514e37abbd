"""Every fenced code block in README.md and docs/**/*.md runs as written, as pytest-examples or
doctest would run it, and a page whose command fails fails its test.

How blocks are found: a fence (three or more backticks or tildes, indented at most three spaces)
opens a block; its info string's first word is the language; the same fence closes it.

- ```python (or py) blocks: each block is written to a file and run on its own with this
  environment's python, as a reader would paste it into a script.
- ```bash (or sh, shell) blocks: run one command at a time (backslash continuations joined, comment
  lines dropped) by bash, with this environment's bin folder first on PATH, so `gan-augment` and
  `python` are the installed ones. The first command that fails fails the page, naming its line.
- Other fences (text synopses, toml, json, printed output, folder layouts, no language) are not
  code to run.

Where: each page runs in its own temporary copy of the repository, with ../shared a symlink to the
real shared data (read only: the test checks that nothing under it changed) and the copy's root as
the working directory, so what a page writes (runs/, models/, grid.png...) is left in the copy.
The test also checks that the repository itself gained or changed no file.

Test-only substitution, so that training blocks take seconds: ``--steps N`` becomes ``--steps 1``
and ``steps=N`` becomes ``steps=1`` (the user runs the page's own numbers). Nothing else is changed,
with one exception: a ``train_agreement_classifier(...)`` call keeps its steps, because the filter
on the same page needs a classifier that has learned something (60 steps take under a minute).

Not run:
- blocks whose commands are `make demo` or `make test` (CI runs both; a block holding them must hold
  nothing else);
- a block preceded by an explicit marker ``<!-- not-run: reason -->``; every such block is listed
  in OPTED_OUT below, so a new opt-out is a visible change to this file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell"}
FAST_STEPS = 1  # one generator update (n_critic critic updates): enough to run every line of a page
TIMEOUT = 900  # seconds per command; a hung command fails instead of blocking the suite

#: (page, first line of the block) -> why it does not run here. Must match the pages' markers.
OPTED_OUT = {
    ("docs/diffaugment.md", "python benchmarks/diffaugment_ablation.py --steps 600"):
        "trains two GANs for about 12 minutes on 2 CPU cores, then evaluates them for about 5",
    ("docs/diffaugment.md", "python benchmarks/generator_race.py --out runs/race64 --sizes 64 --budgets 10,20 "
                            "--candidates cwgan-gp,cwgan-gp-noda --threads 1"):
        "each row trains a GAN for 10 to 40 CPU minutes",
    ("docs/index.md", "pip install -e .   # core + built-in backends (they register through the gan_augment entry points)"):
        "installs gan-augment into the environment the test runs in",
    ("docs/plugins.md", "# tests/test_conformance.py in your package"):
        "needs your backend installed",
    ("docs/plugins.md", "pip install -e ."):
        "installs your package",
    ("docs/distributed.md", "torchrun --nproc_per_node=4 -m gan_augment train --backend wgan-gp \\"):
        "several GPUs",
    ("docs/performance.md", "OMP_NUM_THREADS=2 python benchmarks/train_throughput.py --backends dcgan wgan-gp cwgan-gp bagan \\"):
        "a benchmark",
    ("docs/performance.md", "OMP_NUM_THREADS=2 python benchmarks/sampling_throughput.py --backend wgan-gp --width 32 -n 1024 --rounds 3"):
        "a benchmark",
    ("docs/performance.md", "OMP_NUM_THREADS=1 python benchmarks/mixer_overhead.py --steps 30 --batch-size 32 --gen-images 256"):
        "a benchmark",
    ("docs/performance.md", "OMP_NUM_THREADS=2 python benchmarks/train_throughput.py --backends wgan-gp cwgan-gp --image-size 64 \\"):
        "a benchmark",
    ("docs/performance.md", "OMP_NUM_THREADS=2 python benchmarks/step_minutes.py --backends dcgan wgan-gp --sizes 64 --steps 3 --compile"):
        "a benchmark",
    ("docs/performance.md", "OMP_NUM_THREADS=2 python benchmarks/step_minutes.py --steps 3"):
        "a benchmark",
    ("docs/performance.md", "python benchmarks/precision_quality.py --steps 150 --out runs/precision-quality"):
        "trains two GANs, one in emulated bf16",
    ("docs/efficacy.md", "python benchmarks/hard_generators.py --backend cwgan-gp --out runs/hard-cwgan-gp"):
        "hours of CPU",
    ("docs/efficacy.md", "python benchmarks/efficacy.py --setting hard --generator hub/pbc-hard-cwgan-gp --seeds 5 \\"):
        "about 95 minutes of CPU",
    ("docs/efficacy/report.md", "python benchmarks/efficacy.py --setting natural --generator runs/pbc-cwgan-gp --train-generator 8000 --generator-width 16"):
        "hours of CPU",
    ("docs/efficacy/README_head.md", "python benchmarks/efficacy.py --setting natural --generator runs/pbc-cwgan-gp --train-generator 8000 --generator-width 16"):
        "hours of CPU",
}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)")
MARKER = re.compile(r"^\s*<!--\s*not-run:\s*(.*?)\s*-->\s*$")
MAKE = re.compile(r"^\s*make\s+(demo|test)\b")
#: the first line of a shell block that runs gan-augment or python: the environment `make` created
ACTIVATE = re.compile(r"^\s*(source|\.) \.venv/bin/activate\b")


@dataclass
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the marker's reason, if the block opted out

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def first_line(self) -> str:
        """The block's first command, past the line that activates the environment."""
        return next((ln for ln in self.code.splitlines() if ln.strip() and not ACTIVATE.match(ln)), "")


def extract_blocks(text: str, page: str = "<page>") -> list[Block]:
    """Fenced blocks of a Markdown text, with the not-run marker (if any) that precedes each."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2).lower(), i
        body, i = [], i + 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        marker = MARKER.match(lines[j]) if j >= 0 else None
        if marker and not marker.group(1):
            raise ValueError(f"{page}:{j + 1}: a not-run marker must give its reason")
        blocks.append(Block(page, start + 1, lang, "\n".join(body) + "\n", marker.group(1) if marker else None))
        i += 1
    return blocks


def shell_commands(code: str) -> list[tuple[int, str]]:
    """(line offset, command) for each command of a shell block: continuations joined, comment-only
    and blank lines dropped (bash itself ignores a trailing comment)."""
    out, pending, first = [], "", 0
    for k, raw in enumerate(code.splitlines()):
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if not pending:
            first = k
        part = raw.strip() if pending else raw.rstrip()
        if part.endswith("\\"):
            pending += part[:-1].rstrip() + " "
            continue
        out.append((first, pending + part))
        pending = ""
    if pending:
        out.append((first, pending))
    return out


def fast(code: str) -> str:
    """The documented test-only substitution: small step counts."""
    code = re.sub(r"--steps(\s+|=)\d+", rf"--steps\g<1>{FAST_STEPS}", code)
    return "\n".join(line if "train_agreement_classifier(" in line
                     else re.sub(r"\bsteps=\d+", f"steps={FAST_STEPS}", line) for line in code.split("\n"))


def skip_reason(block: Block) -> str | None:
    if block.not_run is not None:
        return f"not-run marker: {block.not_run}"
    if block.lang in SHELL and any(MAKE.match(c) for _, c in shell_commands(block.code)):
        if not all(MAKE.match(c) for _, c in shell_commands(block.code)):
            raise AssertionError(f"{block.where}: a `make demo`/`make test` block must hold only make commands")
        return "make demo / make test: CI runs them"
    return None


def page_blocks(page: Path) -> list[Block]:
    return [b for b in extract_blocks(page.read_text(), str(page.relative_to(ROOT)))
            if b.lang in PYTHON | SHELL]


def _snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
    if not root.exists():
        return {}
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for f in filenames:
            p = Path(dirpath) / f
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


IGNORED = (".venv", ".git", "runs", "site", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
           "build", "dist", "gan_augment.egg-info")


@pytest.fixture(scope="module")
def repo_unchanged():
    """Running the pages leaves no file behind in the repository and never writes into ../shared."""
    before, shared_before = _snapshot(ROOT, IGNORED), _snapshot(SHARED.resolve())
    yield
    assert _snapshot(SHARED.resolve()) == shared_before, "a page wrote into ../shared"
    after = _snapshot(ROOT, IGNORED)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"running the pages changed files in the repository: {changed[:10]}"


def copy_repo(dest: Path) -> Path:
    repo = dest / "repo"
    shutil.copytree(ROOT, repo, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
    (repo / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)  # what `activate` finds
    (dest / "shared").symlink_to(SHARED.resolve(), target_is_directory=True)
    return repo


def run_block(block: Block, repo: Path, scratch: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    code = fast(block.code)
    if block.lang in PYTHON:
        script = scratch / f"block_{block.line}.py"
        script.write_text(code)
        commands = [(0, [sys.executable, str(script)])]
    else:
        commands = [(k, ["bash", "-c", cmd]) for k, cmd in shell_commands(code)]
    for k, argv in commands:
        proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        if proc.returncode != 0:
            shown = argv[-1] if block.lang in SHELL else "the python block"
            pytest.fail(f"{block.page}:{block.line + 1 + k}: `{shown}` exited {proc.returncode}\n"
                        f"--- stdout (tail)\n{proc.stdout[-2000:]}\n--- stderr (tail)\n{proc.stderr[-4000:]}")


# ---- the pages ---------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_as_written(page, tmp_path, repo_unchanged):
    if not SHARED.joinpath("data").is_dir():
        pytest.skip(f"the shared data folder is missing ({SHARED / 'data'})")
    blocks = page_blocks(page)
    runnable = [b for b in blocks if skip_reason(b) is None]
    if not runnable:
        pytest.skip("no runnable block: " + ("; ".join(f"{b.where} {skip_reason(b)}" for b in blocks) or "no code"))
    repo = copy_repo(tmp_path)
    scratch = tmp_path / "blocks"
    scratch.mkdir()
    for block in runnable:
        run_block(block, repo, scratch)


def test_opted_out_blocks_are_exactly_the_listed_ones():
    found = {(b.page, b.first_line): b.not_run for p in PAGES for b in page_blocks(p) if b.not_run}
    assert set(found) == set(OPTED_OUT), (
        f"markers without an OPTED_OUT entry: {sorted(set(found) - set(OPTED_OUT))}; "
        f"entries without a marker: {sorted(set(OPTED_OUT) - set(found))}")
    for key, reason in OPTED_OUT.items():
        assert found[key].startswith(reason), (key, found[key])


# ---- the extractor itself ----------------------------------------------------------------------
SAMPLE = """\
# Title

```python
print("a")
```

<!-- not-run: needs a GPU -->

```bash
gan-augment train --backend dcgan --data d.npz \\
    --steps 5000 --out runs/x   # comment
# a comment line
gan-augment sample --model runs/x -n 4 --out g.png
```

````text
```python
not a block of its own
```
````

~~~py
aug.fit(data, steps=800, ae_steps=1000)
~~~
"""


def test_extractor_finds_fences_languages_and_markers():
    blocks = extract_blocks(SAMPLE)
    assert [(b.line, b.lang, b.not_run) for b in blocks] == [
        (3, "python", None), (9, "bash", "needs a GPU"), (16, "text", None), (22, "py", None)]
    assert blocks[0].code == 'print("a")\n'
    assert "not a block of its own" in blocks[2].code  # a longer fence holds a shorter one


def test_shell_commands_join_continuations_and_skip_comments():
    cmds = shell_commands(extract_blocks(SAMPLE)[1].code)
    assert cmds == [(0, "gan-augment train --backend dcgan --data d.npz --steps 5000 --out runs/x   # comment"),
                    (3, "gan-augment sample --model runs/x -n 4 --out g.png")]


def test_fast_rewrites_only_step_counts():
    assert fast("--steps 5000 --stop-at 10 --steps=20") == f"--steps {FAST_STEPS} --stop-at 10 --steps={FAST_STEPS}"
    assert fast("aug.fit(data, steps=800, ae_steps=1000)") == f"aug.fit(data, steps={FAST_STEPS}, ae_steps=1000)"
    assert fast("clf = train_agreement_classifier(train, steps=60)") == "clf = train_agreement_classifier(train, steps=60)"


def test_make_blocks_are_skipped_only_when_they_hold_only_make():
    make = Block("p.md", 1, "bash", "make demo   # trains\nmake test\n", None)
    assert "CI runs them" in skip_reason(make)
    mixed = Block("p.md", 1, "bash", "make test\npip install -e .\n", None)
    with pytest.raises(AssertionError, match="only make commands"):
        skip_reason(mixed)


def test_a_marker_without_a_reason_is_an_error():
    with pytest.raises(ValueError, match="reason"):
        extract_blocks("<!-- not-run: -->\n```bash\nls\n```\n")


def test_every_shell_block_that_runs_our_tools_activates_the_environment_first():
    """A reader pastes a block into a fresh shell: `gan-augment` and the project's python are in
    .venv, so a block that calls them starts by activating it (make and pip blocks need not)."""
    tools = re.compile(r"^\s*(\S+=\S+\s+)*(gan-augment|python3?|torchrun)\b")
    missing = []
    for page in PAGES:
        for block in page_blocks(page):
            if block.lang not in SHELL:
                continue
            commands = [c for _, c in shell_commands(block.code)]
            if any(tools.match(c) for c in commands) and not ACTIVATE.match(commands[0]):
                missing.append(block.where)
    assert not missing, f"shell blocks that do not start with `source .venv/bin/activate`: {missing}"
