"""The real huggingface_hub client against a local Hub look-alike on 127.0.0.1.

The server speaks the file routes hf_hub_download uses: HEAD/GET ``/{repo_id}/resolve/{rev}/{file}``
with ETag (git sha1 of small files), X-Repo-Commit and Content-Length; LFS-style files
(``*.safetensors``) answer with a 302 to another host (``localhost`` instead of ``127.0.0.1``, so
the client treats it as a CDN) carrying X-Linked-Etag (sha256) and X-Linked-Size, as the Hub does;
errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound). hf_hub_download calls no
model-info API route, so none is served.

Most tests run in-process with huggingface_hub.constants patched (it reads HF_ENDPOINT,
HF_HUB_OFFLINE and HF_HOME at import); one test runs fresh subprocesses with the real environment
variables to show they work as users set them.

Push is tested at the HfApi boundary: HfApi.create_repo and HfApi.upload_folder are monkeypatched
to "commit" the uploaded folder into this server, then the model is downloaded back through it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import gan_augment as ga
from gan_augment.core.errors import ModelLoadError
from gan_augment.core.format import write_model_folder as save_pretrained
from gan_augment.hub.index import add_to_index
from gan_augment.hub.resolve import git_blob_sha1, sha256_file

REPO = "lab/tiny-dcgan"


class FakeHub:
    """Repos are {repo_id: {"commit": sha, "dir": Path}}; ``requests`` records every call."""

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep pytest output clean
                pass

            def do_HEAD(self):
                hub.handle(self, body=False)

            def do_GET(self):
                hub.handle(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def add_repo(self, repo_id: str, folder: Path, commit: str | None = None) -> str:
        commit = commit or hashlib.sha1(f"{repo_id}{len(self.repos)}{os.urandom(8).hex()}".encode()).hexdigest()
        self.repos[repo_id] = {"commit": commit, "dir": Path(folder)}
        return commit

    def handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append((h.command, h.path, dict(h.headers)))
        parts = h.path.split("?")[0].strip("/").split("/")
        if parts[0] == "lfs" and len(parts) == 3:  # the "CDN": /lfs/{repo}/{sha256}
            for repo in self.repos.values():
                for f in repo["dir"].iterdir():
                    if f.is_file() and sha256_file(f) == parts[2]:
                        return self._send(h, 200, f.read_bytes(), {}, body)
            return self._send(h, 404, b"", {}, body)
        if len(parts) < 5 or parts[2] != "resolve":
            return self._send(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, body)
        repo_id, rev, fname = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._send(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, body)
        if rev not in ("main", repo["commit"]):
            return self._send(h, 404, b"", {"X-Error-Code": "RevisionNotFound"}, body)
        path = repo["dir"] / fname
        commit = {"X-Repo-Commit": repo["commit"]}
        if not path.is_file():
            return self._send(h, 404, b"", {"X-Error-Code": "EntryNotFound", **commit}, body)
        data = path.read_bytes()
        if fname.endswith(".safetensors"):  # LFS file: redirect to another host with linked etag/size
            sha = hashlib.sha256(data).hexdigest()
            return self._send(h, 302, b"", {
                **commit, "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                "ETag": f'"{git_blob_sha1(path)}"',
                "Location": f"http://localhost:{self.port}/lfs/{parts[1]}/{sha}"}, body)
        return self._send(h, 200, data, {**commit, "ETag": f'"{git_blob_sha1(path)}"'}, body)

    @staticmethod
    def _send(h, status, data, headers, body):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if body and data:
            h.wfile.write(data)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub():
    hub = FakeHub()
    yield hub
    hub.close()


@pytest.fixture
def hf(monkeypatch, tmp_path, fake_hub):
    """Point the already-imported huggingface_hub at the fake Hub and a fresh cache."""
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    monkeypatch.setattr(constants, "ENDPOINT", fake_hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        fake_hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("GAN_AUGMENT_HUB_DIR", str(tmp_path / "hub"))
    return cache


def offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = ga.create("dcgan", image_size=16, width=8)
    save_pretrained(model, tmp_path / "model")
    return model, tmp_path / "model"


def same_samples(a, b, n=4, seed=3):
    return torch.equal(a.sample(n, generator=torch.Generator().manual_seed(seed)),
                       b.sample(n, generator=torch.Generator().manual_seed(seed)))


# ---- repo ids -------------------------------------------------------------------------------
def test_repo_id_downloads_caches_then_loads_offline(fake_hub, hf, model_dir, monkeypatch):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    loaded = ga.from_pretrained(REPO)
    assert same_samples(model, loaded)
    snap = hf / "models--lab--tiny-dcgan" / "snapshots" / commit
    assert {p.name for p in snap.iterdir()} == {"config.json", "model.safetensors", "README.md", "samples.png"}
    assert (hf / "models--lab--tiny-dcgan" / "refs" / "main").read_text() == commit
    # the LFS file went through the redirect, and no token or auth left for the "CDN" host
    assert any(p.startswith("/lfs/") for _, p, _ in fake_hub.requests)
    blob = os.path.realpath(snap / "model.safetensors")
    assert Path(blob).name == sha256_file(folder / "model.safetensors")

    n = len(fake_hub.requests)
    offline(monkeypatch)
    again = ga.from_pretrained(REPO)
    pinned = ga.from_pretrained(f"{REPO}@{commit}")
    assert len(fake_hub.requests) == n, "offline mode must not touch the network"
    assert same_samples(model, again) and same_samples(model, pinned)


def test_offline_without_cache_is_one_clear_error(fake_hub, hf, model_dir, monkeypatch):
    fake_hub.add_repo(REPO, model_dir[1])
    offline(monkeypatch)
    with pytest.raises(ModelLoadError, match="not in the Hub cache.*HF_HUB_OFFLINE") as e:
        ga.from_pretrained(REPO)
    assert "\n" not in str(e.value)
    assert fake_hub.requests == []


@pytest.mark.parametrize("name, match", [
    ("nobody/nothing", "was not found"),
    (REPO + "@v9", "has no revision 'v9'"),
])
def test_hub_errors_are_one_line(fake_hub, hf, model_dir, name, match):
    fake_hub.add_repo(REPO, model_dir[1])
    with pytest.raises(ModelLoadError, match=match) as e:
        ga.from_pretrained(name)
    assert "\n" not in str(e.value)


def test_repo_without_weights_is_not_a_model(fake_hub, hf, model_dir, tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(model_dir[1] / "config.json", half)
    fake_hub.add_repo(REPO, half)
    with pytest.raises(ModelLoadError, match="has no model.safetensors; it is not a gan-augment model repo"):
        ga.from_pretrained(REPO)


def test_corrupted_cache_blob_is_evicted_and_never_loads_as_good(fake_hub, hf, model_dir, monkeypatch):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    ga.from_pretrained(REPO)
    pointer = hf / "models--lab--tiny-dcgan" / "snapshots" / commit / "model.safetensors"
    blob = Path(os.path.realpath(pointer))
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0xFF  # flip a byte inside the tensor payload: safetensors itself cannot notice
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    offline(monkeypatch)
    with pytest.raises(ModelLoadError, match="does not match its content hash.*removed from the cache"):
        ga.from_pretrained(REPO)
    assert not pointer.exists() and not blob.exists()
    with pytest.raises(ModelLoadError, match="not in the Hub cache"):  # never loads as good later
        ga.from_pretrained(REPO)


def test_corrupted_cache_blob_recovers_online(fake_hub, hf, model_dir):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    ga.from_pretrained(REPO)
    pointer = hf / "models--lab--tiny-dcgan" / "snapshots" / commit / "model.safetensors"
    blob = Path(os.path.realpath(pointer))
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:100])  # truncated on disk
    with pytest.raises(ModelLoadError, match="content hash"):
        ga.from_pretrained(REPO)
    assert same_samples(model, ga.from_pretrained(REPO))  # fetched afresh


# ---- short names through the Hub cache ------------------------------------------------------
def test_short_name_without_bundle_downloads_verifies_then_works_offline(
        fake_hub, hf, model_dir, tmp_path, monkeypatch, caplog):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    add_to_index(folder, "tiny", REPO, commit, hub=tmp_path / "hub", bundle=False)
    caplog.set_level(logging.INFO, logger="gan_augment.hub")
    assert same_samples(model, ga.from_pretrained("tiny"))
    assert "a download from the Hub" in caplog.text
    caplog.clear()
    offline(monkeypatch)
    n = len(fake_hub.requests)
    assert same_samples(model, ga.from_pretrained("tiny"))
    assert "from the Hub cache" in caplog.text and len(fake_hub.requests) == n


def test_short_name_bundle_missing_falls_back_to_hub_cache(fake_hub, hf, model_dir, tmp_path, caplog):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    add_to_index(folder, "tiny", REPO, commit, hub=tmp_path / "hub", bundle=True)
    (tmp_path / "hub" / "tiny" / "model.safetensors").unlink()  # e.g. a slimmed install
    caplog.set_level(logging.INFO, logger="gan_augment.hub")
    assert same_samples(model, ga.from_pretrained("tiny"))
    assert "bundled copy has no model.safetensors" in caplog.text


def test_short_name_sha_mismatch_is_error_and_leaves_no_good_looking_cache(
        fake_hub, hf, model_dir, tmp_path, monkeypatch):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    add_to_index(folder, "tiny", REPO, commit, hub=tmp_path / "hub", bundle=False)
    # the repo now serves other weights at the pinned commit (a tampered mirror)
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    save_pretrained(ga.create("dcgan", image_size=16, width=8), tampered, card=False)
    fake_hub.repos[REPO]["dir"] = tampered
    with pytest.raises(ModelLoadError, match="sha256 mismatch for (config.json|model.safetensors) of 'tiny'") as e:
        ga.from_pretrained("tiny")
    assert "\n" not in str(e.value)
    from huggingface_hub import try_to_load_from_cache

    for f in ("config.json", "model.safetensors"):
        cached = try_to_load_from_cache(REPO, f, revision=commit)
        assert not (isinstance(cached, str) and sha256_file(cached) != sha256_file(folder / f))
    offline(monkeypatch)
    with pytest.raises(ModelLoadError):
        ga.from_pretrained("tiny")


# ---- push, at the HfApi boundary -------------------------------------------------------------
@pytest.fixture
def fake_push(monkeypatch, fake_hub, tmp_path):
    """Replace HfApi.create_repo / upload_folder: 'commit' uploaded files into the fake Hub."""
    from huggingface_hub import CommitInfo, HfApi, RepoUrl

    calls = []

    def create_repo(self, repo_id, *, private=None, exist_ok=False, repo_type=None, **kw):
        calls.append(("create_repo", repo_id, {"private": private, "exist_ok": exist_ok, "repo_type": repo_type}))
        return RepoUrl(f"{fake_hub.url}/{repo_id}", endpoint=fake_hub.url)

    def upload_folder(self, *, repo_id, folder_path, commit_message=None, allow_patterns=None, **kw):
        calls.append(("upload_folder", repo_id, {"message": commit_message, "allow": list(allow_patterns or []),
                                                 "token": self.token}))
        dest = tmp_path / "served" / repo_id.replace("/", "--") / str(len(calls))
        dest.mkdir(parents=True)
        for f in Path(folder_path).iterdir():
            if allow_patterns is None or f.name in allow_patterns:
                shutil.copy(f, dest / f.name)
        oid = fake_hub.add_repo(repo_id, dest)
        return CommitInfo(commit_url=f"{fake_hub.url}/{repo_id}/commit/{oid}", commit_message=commit_message,
                          commit_description="", oid=oid, _endpoint=fake_hub.url)

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_to_hub_then_from_pretrained_round_trip(fake_hub, hf, fake_push):
    model = ga.create("dcgan", image_size=16, width=8)
    info = model.push_to_hub("me/pushed", private=True, token="hf_fake", commit_message="first",
                             metrics={"fid": {"value": 12.5, "floor": 3.0}})
    kinds = [c[0] for c in fake_push]
    assert kinds == ["create_repo", "upload_folder"]
    assert fake_push[0][2] == {"private": True, "exist_ok": True, "repo_type": "model"}
    assert fake_push[1][2]["message"] == "first" and fake_push[1][2]["token"] == "hf_fake"
    assert set(fake_push[1][2]["allow"]) == {"config.json", "model.safetensors", "README.md", "samples.png"}
    loaded = ga.from_pretrained(f"me/pushed@{info.oid}")
    assert same_samples(model, loaded)
    assert loaded.metrics == {"fid": {"value": 12.5, "floor": 3.0}}


def test_cli_push_uploads_only_model_files_and_writes_a_card(fake_hub, hf, fake_push, model_dir, tmp_path, capsys):
    from gan_augment.cli import main

    model, folder = model_dir
    run = tmp_path / "run"
    save_pretrained(model, run, card=False)  # what the trainer leaves
    (run / "checkpoint.safetensors").write_bytes(b"training state, not for the Hub")
    (run / "metrics.jsonl").write_text("{}\n")
    assert main(["push", str(run), "me/run", "--license", "mit"]) == 0
    out = capsys.readouterr().out
    assert "commit:" in out
    served = fake_hub.repos["me/run"]["dir"]
    assert {p.name for p in served.iterdir()} == {"config.json", "model.safetensors", "README.md", "samples.png"}
    from huggingface_hub import metadata_load

    assert metadata_load(served / "README.md")["license"] == "mit"
    assert not (run / "README.md").exists(), "push must not modify the user's folder"
    assert main(["info", "me/run"]) == 0
    info = capsys.readouterr().out
    assert "dcgan" in info and "16x16" in info and "mit" in info


def test_push_refuses_a_broken_folder(fake_hub, hf, fake_push, model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir[1], bad)
    (bad / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelLoadError):
        ga.hub.push_folder(bad, "me/bad")
    assert fake_push == []


# ---- the real environment variables, in fresh processes ---------------------------------------
SCRIPT = """
import json, sys, torch, gan_augment as ga
from huggingface_hub import constants
m = ga.from_pretrained(sys.argv[1])
x = m.sample(2, generator=torch.Generator().manual_seed(0))
print(json.dumps({"offline": constants.is_offline_mode(), "sum": float(x.double().sum())}))
"""


@pytest.mark.slow  # three fresh interpreters importing torch: ~20 s on 2 busy cores
def test_env_vars_hf_endpoint_hf_home_and_offline_in_subprocesses(fake_hub, model_dir, tmp_path):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    add_to_index(folder, "tiny", REPO, commit, hub=tmp_path / "hub", bundle=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=fake_hub.url, HF_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", GAN_AUGMENT_HUB_DIR=str(tmp_path / "hub"),
               PYTHONWARNINGS="ignore")
    expected = float(model.sample(2, generator=torch.Generator().manual_seed(0)).double().sum())

    def run(name, **extra):
        r = subprocess.run([sys.executable, "-c", SCRIPT, name], env={**env, **extra},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout.strip().splitlines()[-1])

    online = run("tiny")
    assert online == {"offline": False, "sum": pytest.approx(expected, abs=0)}
    assert (tmp_path / "home" / "hub" / "models--lab--tiny-dcgan" / "snapshots" / commit).is_dir()
    fake_hub.close()  # the Hub is gone: only the cache can answer now
    assert run("tiny", HF_HUB_OFFLINE="1") == {"offline": True, "sum": pytest.approx(expected, abs=0)}
    assert run(f"{REPO}@{commit}", HF_HUB_OFFLINE="1")["sum"] == pytest.approx(expected, abs=0)
    fake_hub.close = lambda: None  # already closed
