"""`gan-augment push DIR REPO_ID`, `gan-augment info NAME` and `gan-augment models`."""

from __future__ import annotations

import json


def cmd_push(args) -> int:
    from gan_augment.hub.pretrained import push_folder

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
    from gan_augment.hub.folder import card_summary
    from gan_augment.hub.resolve import resolve

    folder = resolve(args.name, revision=args.revision, local_files_only=args.offline)
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
        print("metrics:")
        for k, v in s["metrics"].items():
            if isinstance(v, dict):
                floor = f" (floor {v['floor']})" if v.get("floor") is not None else ""
                print(f"  {k}: {v.get('value')}{floor}")
            else:
                print(f"  {k}: {v}")
    else:
        print("metrics:".ljust(width + 2) + "none measured")
    return 0


def cmd_models(args) -> int:
    from gan_augment.hub.resolve import hub_dir, load_index

    index = load_index()
    if not index:
        print(f"no short names listed yet ({hub_dir()})")
        return 0
    for name, e in sorted(index.items()):
        bundled = "bundled" if e.get("folder") and (hub_dir() / e["folder"]).is_dir() else "Hub only"
        print(f"{name}  {e['repo_id']}@{(e['revision'] or 'unpushed')[:12]}  [{bundled}]  {e.get('description', '')}".rstrip())
    return 0


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
