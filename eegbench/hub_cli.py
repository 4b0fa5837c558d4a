"""``eegbench push`` and ``eegbench pull`` (Hugging Face Hub), and repository support for ``verify``."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from .codecs import COMPRESSIONS

_EPILOG_PUSH = """\
examples:
  eegbench push eegbci.zarr me/eegbci --dry-run          # what would be uploaded, no network
  eegbench push ../shared/data/eeg/eegbci_S001 me/eegbci --format zarr
  HF_TOKEN=... eegbench push eegbci.h5store me/eegbci --private

The token comes from --token, HF_TOKEN or `hf auth login`; it is never printed.
An interrupted push resumes when run again.
"""

_EPILOG_PULL = """\
examples:
  eegbench pull me/eegbci                                 # everything
  eegbench pull me/eegbci --filter subject=001            # one subject's files + metadata
  EEGBENCH_OFFLINE=1 eegbench pull me/eegbci --filter task=rest   # cache only, no network
  eegbench pull me/eegbci --revision 3f2a... --repair     # re-fetch files that fail verification
"""


def add_parser(subparsers: Any) -> None:
    """Register ``push`` and ``pull`` on the main parser's subcommands."""
    from .formats import available_formats

    push = subparsers.add_parser("push", help="upload a store (or recordings, converted first) to the Hugging Face Hub",
                                 description="Upload SRC to the Hub dataset repository REPO with a dataset card, "
                                             "format_info.json and Croissant metadata.",
                                 epilog=_EPILOG_PUSH, formatter_class=argparse.RawDescriptionHelpFormatter)
    push.add_argument("src", metavar="SRC", help="a store, recording files folder or BIDS root")
    push.add_argument("repo", metavar="REPO", help="repository id, owner/name")
    push.add_argument("--format", "-f", choices=available_formats(), default=None,
                      help="convert to this format first (default: a store as is, anything else to zarr)")
    push.add_argument("--compression", "-c", choices=COMPRESSIONS, default=None, help="codec when converting")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    push.add_argument("--message", "-m", default=None, help="commit message (uses upload_folder)")
    push.add_argument("--license", default=None, help="license id for the dataset card (default: other)")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the stored login)")
    push.add_argument("--cache-dir", default=None, help="where the staging folder lives (default: the Hub cache)")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; no network")
    push.add_argument("--json", action="store_true", help="machine-readable plan")
    push.set_defaults(handler=run_push)

    pull = subparsers.add_parser("pull", help="download a dataset repository (or part of it) into the local cache",
                                 description="Download REPO's metadata and the files of the recordings that match "
                                             "the filters into the Hub cache, check them, and print the path.",
                                 epilog=_EPILOG_PULL, formatter_class=argparse.RawDescriptionHelpFormatter)
    pull.add_argument("repo", metavar="REPO", help="repository id, owner/name")
    pull.add_argument("--revision", default=None, help="branch, tag or commit (default main)")
    pull.add_argument("--filter", action="append", default=[], metavar="COLUMN=VALUE[,VALUE...]",
                      help="keep recordings whose description COLUMN is one of the VALUEs (repeatable)")
    pull.add_argument("--cache-dir", default=None, help="cache folder (default EEGBENCH_CACHE_DIR, else HF's)")
    pull.add_argument("--offline", action="store_true", help="use only the local cache (no network)")
    pull.add_argument("--verify", action="store_true", help="re-hash the pulled files against the manifest")
    pull.add_argument("--repair", action="store_true", help="re-download files that fail verification")
    pull.add_argument("--token", default=None, help="Hub token for private repositories")
    pull.set_defaults(handler=run_pull)


def parse_filters(items: list[str]) -> dict[str, Any]:
    """``["subject=001,002", "task=rest"]`` -> ``{"subject": ["001", "002"], "task": "rest"}``."""
    from .errors import OptionError

    out: dict[str, Any] = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise OptionError(f"--filter wants COLUMN=VALUE, got {item!r}")
        values = value.split(",")
        out[column] = values if len(values) > 1 else values[0]
    return out


def run_push(args: argparse.Namespace) -> int:
    from .hub import push_to_hub

    t0 = time.perf_counter()
    plan = push_to_hub(args.src, args.repo, format=args.format, compression=args.compression, private=args.private,
                       token=args.token, revision=args.revision, commit_message=args.message, license=args.license,
                       dry_run=args.dry_run, cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps({"repo_id": plan.repo_id, "revision": plan.revision, "uploaded": plan.uploaded,
                          "method": plan.method, "n_files": plan.n_files, "n_bytes": plan.n_bytes,
                          "files": plan.files}, indent=1))
        return 0
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{args.repo}: {verb} {plan.n_files} files, {plan.n_bytes} bytes "
          f"({plan.format_info['format']}, {plan.format_info['n_recordings']} recordings) "
          f"with {plan.method} in {time.perf_counter() - t0:.1f} s")
    if args.dry_run:
        for rel, entry in plan.files.items():
            print(f"  {entry['size']:>12}  {rel}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from .hub import pull, repair, verify_repo

    filters = parse_filters(args.filter)
    t0 = time.perf_counter()
    pulled = pull(args.repo, revision=args.revision, cache_dir=args.cache_dir, offline=args.offline or None,
                  token=args.token, **filters)
    status = 0
    if args.verify or args.repair:
        report = verify_repo(pulled.path, keys=pulled.keys)
        if not report.ok and args.repair:
            repair(args.repo, report.refetch, revision=pulled.commit, cache_dir=args.cache_dir, token=args.token)
            report = verify_repo(pulled.path, keys=pulled.keys)
        if not report.ok:
            print(report.message(repo_id=args.repo, revision=pulled.commit))
            status = 1
    what = f"{len(pulled.keys)} recordings" + (" (partial)" if pulled.partial else "")
    print(f"{args.repo}@{pulled.commit[:12]}: {what}, {len(pulled.files)} files in {time.perf_counter() - t0:.1f} s")
    print(pulled.path)
    return status


def run_verify(path: str, *, cache_dir: str | None = None, revision: str | None = None) -> int:
    """``eegbench verify PATH_OR_REPO``: a store folder, or a repository id resolved in the cache."""
    from .hub import looks_like_repo_id, resolve_cached, verify_repo

    repo_id = None
    root: str | os.PathLike = path
    if looks_like_repo_id(path):
        repo_id = path
        root = resolve_cached(path, revision=revision, cache_dir=cache_dir)
    report = verify_repo(root)
    if report.ok:
        from .store import verify

        verify(root)  # the store's own checks too (raises a typed error on a problem)
    commit = os.path.basename(os.fspath(root)) if repo_id else None
    print(report.message(repo_id=repo_id, revision=commit))
    return 0 if report.ok else 1
