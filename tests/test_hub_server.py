"""The real huggingface_hub client against a local Hub look-alike on 127.0.0.1.

The server speaks the routes snapshot_download uses: GET ``/api/models/{repo_id}/revision/{rev}``
(repo info: the commit), GET ``/api/models/{repo_id}/tree/{rev}`` (the file listing, with the git
sha1 of every file and the sha256 of LFS files), and HEAD/GET ``/{repo_id}/resolve/{rev}/{file}``
with ETag (git sha1 of small files), X-Repo-Commit and Content-Length; LFS-style files
(``*.safetensors``) answer with a 302 to another host (``localhost`` instead of ``127.0.0.1``, so
the client treats it as a CDN) carrying X-Linked-Etag (sha256) and X-Linked-Size, as the Hub does;
errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound).

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
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import gan_augment as ga
from gan_augment.core.errors import ModelLoadError
from gan_augment.core.folder import push_folder
from gan_augment.core.format import PUSH_FILES
from gan_augment.core.serialization import sha256_file
from gan_augment.hub.index import add_to_index

REPO = "lab/tiny-dcgan"
MODEL_FILES = {"config.json", "model.safetensors", "README.md", "samples.png"}


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file: what the Hub sends as ETag (and the cache's blob name) for non-LFS files."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


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
        if parts[0] == "api" and len(parts) >= 6 and parts[1] == "models" and parts[4] in ("revision", "tree"):
            return self._api(h, "/".join(parts[2:4]), parts[4], parts[5], body)
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

    def _api(self, h, repo_id: str, kind: str, rev: str, body: bool) -> None:
        """Repo info (the commit a revision points at) and the recursive file listing."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._send(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, body)
        if rev not in ("main", repo["commit"]):
            return self._send(h, 404, b"", {"X-Error-Code": "RevisionNotFound"}, body)
        files = sorted(f for f in repo["dir"].iterdir() if f.is_file())
        if kind == "revision":
            data = {"id": repo_id, "sha": repo["commit"], "siblings": [{"rfilename": f.name} for f in files]}
        else:
            data = []
            for f in files:
                entry = {"type": "file", "path": f.name, "size": f.stat().st_size, "oid": git_blob_sha1(f)}
                if f.name.endswith(".safetensors"):
                    entry["lfs"] = {"oid": sha256_file(f), "size": f.stat().st_size, "pointerSize": 134}
                data.append(entry)
        return self._send(h, 200, json.dumps(data).encode(), {"Content-Type": "application/json"}, body)

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
    model.save_pretrained(tmp_path / "model")
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


def test_corrupted_cache_blob_is_an_error_naming_force_download_and_never_loads_as_good(
        fake_hub, hf, model_dir, monkeypatch):
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
    for _ in range(2):  # nothing is deleted behind the user's back, and the bad copy never loads
        with pytest.raises(ModelLoadError, match="does not match the sha256 recorded in config.json.*"
                           rf"from_pretrained\('{REPO}@{commit}', force_download=True\)") as e:
            ga.from_pretrained(REPO)
        assert "\n" not in str(e.value)
        assert pointer.exists() and blob.read_bytes() == bytes(data)


def test_corrupted_cache_blob_recovers_with_force_download(fake_hub, hf, model_dir):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    ga.from_pretrained(REPO)
    pointer = hf / "models--lab--tiny-dcgan" / "snapshots" / commit / "model.safetensors"
    blob = Path(os.path.realpath(pointer))
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:100])  # truncated on disk
    with pytest.raises(ModelLoadError, match="truncated or corrupted.*force_download=True"):
        ga.from_pretrained(REPO)
    assert same_samples(model, ga.from_pretrained(REPO, force_download=True))  # fetched afresh
    assert sha256_file(pointer) == sha256_file(folder / "model.safetensors")
    assert same_samples(model, ga.from_pretrained(REPO))


def test_force_download_needs_the_network(fake_hub, hf, model_dir, monkeypatch):
    fake_hub.add_repo(REPO, model_dir[1])
    with pytest.raises(ga.ConfigError, match="force_download=True needs the network.*local_files_only"):
        ga.from_pretrained(REPO, force_download=True, local_files_only=True)
    assert fake_hub.requests == []


def test_only_model_files_are_fetched_never_code(fake_hub, hf, model_dir, tmp_path):
    """A repo may hold code and pickles beside the model: they are never requested or cached."""
    model, folder = model_dir
    repo = tmp_path / "repo"
    shutil.copytree(folder, repo)
    (repo / "modeling_evil.py").write_text("raise SystemExit('ran')\n")
    (repo / "pytorch_model.bin").write_bytes(b"pickle")
    (repo / "checkpoint.safetensors").write_bytes(b"training state")
    commit = fake_hub.add_repo(REPO, repo)
    assert same_samples(model, ga.from_pretrained(REPO))
    snap = hf / "models--lab--tiny-dcgan" / "snapshots" / commit
    assert {p.name for p in snap.iterdir()} == MODEL_FILES
    fetched = [p for _, p, _ in fake_hub.requests if "/resolve/" in p]
    assert fetched and not [p for p in fetched if p.rsplit("/", 1)[-1] not in MODEL_FILES]


def test_unreachable_hub_fails_fast_in_one_line(hf, model_dir, tmp_path, monkeypatch, caplog):
    """A dead endpoint (connection refused): no retries, one line, how to work offline. A pinned commit
    is the case huggingface_hub's file listing would retry five times (about 25 s)."""
    import socket

    from huggingface_hub import constants

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    add_to_index(model_dir[1], "tiny", REPO, "a" * 40, hub=tmp_path / "hub", bundle=False)
    caplog.set_level(logging.INFO)
    for name in (REPO, f"{REPO}@{'a' * 40}", "tiny"):
        t0 = time.monotonic()
        with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face Hub.*HF_HUB_OFFLINE=1.*local "
                           "model folder.*short name bundled") as e:
            ga.from_pretrained(name)
        assert time.monotonic() - t0 < 5, name
        assert "\n" not in str(e.value)
    assert "Retry" not in caplog.text


# ---- short names through the Hub cache ------------------------------------------------------
def test_short_name_without_bundle_downloads_verifies_then_works_offline(
        fake_hub, hf, model_dir, tmp_path, monkeypatch, caplog):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    add_to_index(folder, "tiny", REPO, commit, hub=tmp_path / "hub", bundle=False)
    caplog.set_level(logging.INFO, logger="gan_augment.hub")
    assert same_samples(model, ga.from_pretrained("tiny"))
    assert "downloaded into the Hub cache" in caplog.text and "sha256 of 4 files verified" in caplog.text
    caplog.clear()
    n = len(fake_hub.requests)
    assert same_samples(model, ga.from_pretrained("tiny"))  # a pinned commit in the cache: no network
    offline(monkeypatch)
    assert same_samples(model, ga.from_pretrained("tiny"))
    assert "using the Hub cache" in caplog.text and "downloaded" not in caplog.text
    assert len(fake_hub.requests) == n


def test_short_name_bundle_missing_falls_back_to_hub_cache(fake_hub, hf, model_dir, tmp_path, caplog):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    add_to_index(folder, "tiny", REPO, commit, hub=tmp_path / "hub", bundle=True)
    (tmp_path / "hub" / "tiny" / "model.safetensors").unlink()  # e.g. a slimmed install
    caplog.set_level(logging.INFO, logger="gan_augment.hub")
    assert same_samples(model, ga.from_pretrained("tiny"))
    assert "bundled copy has no model.safetensors" in caplog.text


def test_short_name_sha_mismatch_is_an_error_every_time(
        fake_hub, hf, model_dir, tmp_path, monkeypatch):
    model, folder = model_dir
    commit = fake_hub.add_repo(REPO, folder)
    add_to_index(folder, "tiny", REPO, commit, hub=tmp_path / "hub", bundle=False)
    # the repo now serves other weights at the pinned commit (a tampered mirror)
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    ga.create("dcgan", image_size=16, width=8).save_pretrained(tampered, card=False)
    fake_hub.repos[REPO]["dir"] = tampered
    match = (r"sha256 mismatch for (config.json|model.safetensors) of 'tiny'.*"
             r"from_pretrained\('tiny', force_download=True\)")
    with pytest.raises(ModelLoadError, match=match) as e:
        ga.from_pretrained("tiny")
    assert "\n" not in str(e.value)
    with monkeypatch.context() as m:  # the bad copy stays in the cache but never loads as good
        offline(m)
        with pytest.raises(ModelLoadError, match=match):
            ga.from_pretrained("tiny")
    with pytest.raises(ModelLoadError, match=match):  # fetched afresh: still not the published bytes
        ga.from_pretrained("tiny", force_download=True)


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
    # ModelHubMixin.push_to_hub leaves repo_type to HfApi's default, which is "model"
    assert {**fake_push[0][2], "repo_type": fake_push[0][2]["repo_type"] or "model"} == \
        {"private": True, "exist_ok": True, "repo_type": "model"}
    assert fake_push[1][2]["message"] == "first" and fake_push[1][2]["token"] == "hf_fake"
    assert set(fake_push[1][2]["allow"]) == set(PUSH_FILES)  # model files only, never anything else
    assert {p.name for p in fake_hub.repos["me/pushed"]["dir"].iterdir()} == MODEL_FILES
    loaded = ga.from_pretrained(f"me/pushed@{info.oid}")
    assert same_samples(model, loaded)
    assert loaded.metrics == {"fid": {"value": 12.5, "floor": 3.0}}


def test_cli_push_uploads_only_model_files_and_writes_a_card(fake_hub, hf, fake_push, model_dir, tmp_path, capsys):
    from gan_augment.cli import main

    model, folder = model_dir
    run = tmp_path / "run"
    model.save_pretrained(run, card=False)  # what the trainer leaves
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
        push_folder(bad, "me/bad")
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
