"""`gan-augment push DIR REPO_ID`, `gan-augment info NAME` and `gan-augment models`."""

from __future__ import annotations

import json

#: which way is better, for reading a figure beside its floor (docs/metrics.md has the full table)
BETTER = {"fid": "lower", "kid": "lower", "precision": "higher", "recall": "higher", "coverage": "higher",
          "density": "near 1", "domain_is": "higher", "inception_score": "higher",
          "ms_ssim": "near the floor (above it: less diverse than real images)",
          "near_copies_pixel_fraction": "near the floor (above it: copies of training images)",
          "near_copies_feature_fraction": "near the floor (above it: copies of training images)",
          "nn_distance_pixel_median": "near the floor (below it: closer to training images than real ones are)",
          "nn_distance_feature_median": "near the floor (below it: closer to training images than real ones are)"}
FLOOR_MEANING = ("floor = the same metric for real images (real TRAIN images against the same test images):\n"
                 "what real data scores, so read each value against its floor, not against 0.")


def cmd_push(args) -> int:
    from gan_augment.core.folder import push_folder

    card_info = {}
    if args.license:
        card_info["license"] = args.license
    if args.dataset:
        card_info["datasets"] = args.dataset
    info = push_folder(args.dir, args.repo_id, private=args.private or None, token=args.token,
                       commit_message=args.message, revision=args.revision, **card_info)
    print(f"pushed {args.dir} to {args.repo_id}")
    print(f"commit: {getattr(info, 'oid', '?')}  (pin this in hub/index.json)")
    url = getattr(info, "commit_url", None)
    if url:
        print(f"url:    {url}")
    return 0


def cmd_info(args) -> int:
    from gan_augment.core.folder import card_summary, find

    folder = find(args.name, revision=args.revision, local_files_only=args.offline).folder
    s = card_summary(folder)
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    rows = [
        ("backend", f"{s['backend']} ({s['backend_distribution']} {s['backend_version']})"),
        ("conditional", "yes" if s["conditional"] else "no"),
        ("classes", ", ".join(s["classes"] or [])),
        ("image size", s["image_size"]),
        ("license", s["license"]),
        ("datasets", ", ".join(map(str, s["datasets"])) or "-"),
        ("training images", s["training_images"] if s["training_images"] is not None else "unknown"),
        ("folder", s["folder"]),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    if s["metrics"]:
        print_metrics(s["metrics"])
    else:
        print("metrics:".ljust(width + 2) + "none measured")
    return 0


def print_metrics(metrics: dict) -> None:
    """Each metric beside its floor and which way is better, after one line saying what a floor is."""
    print("metrics, measured against held-out real test images;")
    print(FLOOR_MEANING)
    rows = [("metric", "model", "floor", "better")]
    for k, v in metrics.items():
        value, floor = (v.get("value"), v.get("floor")) if isinstance(v, dict) else (v, None)
        rows.append((k, _num(value), _num(floor), BETTER.get(k, "")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def cmd_models(args) -> int:
    from gan_augment.core.short_names import hub_dir, load_index

    index = load_index()
    if not index:
        print(f"no short names listed yet ({hub_dir()})")
        return 0
    rows = [("short name", "where it loads from", "what")]
    for name, e in sorted(index.items()):
        rows.append((name, availability(e, bool(e.get("folder")) and (hub_dir() / e["folder"]).is_dir()),
                     e.get("description", "")))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for r in rows:
        print(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}".rstrip())
    print("Use a short name anywhere a model is asked for: from_pretrained(\"NAME\"), --model NAME. "
          "Bundled models ship inside gan-augment and load offline.")
    return 0


def availability(entry: dict, bundled: bool) -> str:
    """Where a short name's files come from, in words (no placeholder revisions)."""
    on_hub = f"on the Hub as {entry['repo_id']}@{entry['revision'][:12]}" if entry.get("revision") else ""
    if bundled and on_hub:
        return f"bundled (offline); also {on_hub}"
    if bundled:
        return "bundled (offline); not on the Hugging Face Hub yet"
    if on_hub:
        return f"{on_hub} (downloaded on first use)"
    return "listed but neither bundled nor pushed: cannot load"


def add_commands(sub) -> None:
    p = sub.add_parser("push", help="upload a saved model folder to the Hugging Face Hub")
    p.add_argument("dir", help="model folder (save_pretrained or `train --out`)")
    p.add_argument("repo_id", help="owner/name on the Hub (created if missing)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", default=None, help="Hub token (default: `hf auth login`'s)")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--revision", default=None, help="branch to push to (default main)")
    p.add_argument("--license", default=None, help="licence id for a card written now (default cc-by-4.0)")
    p.add_argument("--dataset", action="append", help="Hub dataset id the model was trained on; repeatable")
    p.set_defaults(func=cmd_push)

    i = sub.add_parser("info", help="summarise a model: backend, classes, image size, metrics, licence")
    i.add_argument("name", help="model folder, short name or Hub repo id[@revision]")
    i.add_argument("--revision", default=None)
    i.add_argument("--offline", action="store_true", help="use only files already on disk")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("models", help="list the short names gan-augment knows")
    m.set_defaults(func=cmd_models)
