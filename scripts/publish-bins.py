#!/usr/bin/env python3
"""Writes a `card-lookup data sync` manifest for a set of BIN tables.

    python3 scripts/publish-bins.py --out DIR NAME=FILE [NAME=FILE ...] [--base-url URL]

Copies each FILE into DIR as NAME's stem with the first 12 hex digits of its SHA-256
(bins.csv.gz -> bins-3f2a9c0d1e2f.csv.gz: a new table never overwrites the one replicas may be
downloading) and writes DIR/manifest.json naming each as NAME, the file name replicas serve.
URLs are relative to the manifest unless --base-url is given. Upload the tables first and the
manifest last (docs/operations.md, "Large tables: an origin and data sync"). Check the tables
with `card-lookup data check` before publishing: the updaters refuse a set with a bad row.
"""

import argparse
import datetime
import hashlib
import json
import shutil
import sys
from pathlib import Path


def content_name(name: str, digest: str) -> str:
    stem, dot, suffix = name.partition(".")
    return f"{stem}-{digest[:12]}{dot}{suffix}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument("--base-url", default="", help="prefix for the files' URLs")
    parser.add_argument("tables", nargs="+", metavar="NAME=FILE")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = []
    for table in args.tables:
        name, sep, source = table.partition("=")
        if not sep or not name or "/" in name or name.startswith("."):
            parser.error(f"{table!r}: expected NAME=FILE with a plain NAME")
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
        published = content_name(name, digest)
        shutil.copyfile(source, args.out / published)
        files.append({"name": name, "url": args.base_url + published, "sha256": digest})
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    manifest = {"published_at": now.isoformat().replace("+00:00", "Z"), "files": files}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(args.out / "manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
