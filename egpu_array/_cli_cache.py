"""Inspect or clear the on-disk kernel cache (EGPU_ARRAY_CACHE_DIR).

``cache info`` prints the folder, how many compiled kernels (files named by the cache: 64 hex digits
and ``.bin``) it holds and their total size, or says the disk cache is disabled. ``cache clear``
removes those files and nothing else
(other files, sub-folders and the folder itself stay). Clearing is always safe: a missing kernel is
recompiled on its next use, and a process running at the same time only pays that recompile.

Exit status: 0 ok (also: cache disabled, or folder not created yet), 1 the folder cannot be read or
some files could not be removed, 2 usage error.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL = 0, 1
PATTERN = "*.bin"
KERNEL_NAME = re.compile(r"[0-9a-f]{64}\.bin")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("info", help="print the cache folder, its number of kernel files and their size",
                       description="Print the kernel cache folder, the number of cached kernel files "
                                   f"({PATTERN}) and their total size, or say that the cache is disabled.")
    p.set_defaults(action="info")
    p = sub.add_parser("clear", help=f"remove the cached kernel files ({PATTERN}), print how many",
                       description=f"Remove the cached kernel files ({PATTERN}) from the kernel cache "
                                   "folder and print how many were removed. Nothing else is deleted.")
    p.add_argument("--dry-run", action="store_true",
                   help="only print what would be removed")
    p.set_defaults(action="clear")


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _folder() -> Path | None:
    from egpu_array.kernels.cache import cache_dir
    return cache_dir()


def _kernel_files(folder: Path) -> list[Path]:
    """The kernel files directly in ``folder``: regular files (no links, no sub-folders) named as
    the cache names them (64 hex digits, ``.bin``), so a user's other ``*.bin`` files in a
    folder chosen with EGPU_ARRAY_CACHE_DIR are never counted or removed."""
    return sorted(p for p in folder.glob(PATTERN)
                  if KERNEL_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink())


def _size(paths) -> int:
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:  # removed meanwhile by another process
            pass
    return total


def _check_folder(folder: Path) -> str | None:
    """None when ``folder`` is usable (or absent), else an error message."""
    try:
        if not folder.exists():
            return None
        if not folder.is_dir():
            return f"{folder} is not a folder"
    except OSError as exc:  # (a name too long, a parent that cannot be searched)
        return f"cannot check {folder}: {exc}"
    return None


def _info(folder: Path | None) -> int:
    if folder is None:
        print("kernel cache: disabled (EGPU_ARRAY_CACHE_DIR=off)")
        return EXIT_OK
    print(f"kernel cache: {folder}")
    error = _check_folder(folder)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAIL
    if not folder.exists():
        print("kernel files: 0 (folder not created yet)")
        print("total size: 0 B")
        return EXIT_OK
    try:
        files = _kernel_files(folder)
        known = set(files)
        others = [p for p in folder.iterdir() if p not in known]
    except OSError as exc:
        print(f"error: cannot read {folder}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    size = _size(files)
    print(f"kernel files: {len(files)}")
    print(f"total size: {_human(size)} ({size} bytes)")
    if others:
        print(f"other entries: {len(others)} (not kernels; 'cache clear' leaves them)")
    return EXIT_OK


def _clear(folder: Path | None, dry_run: bool) -> int:
    if folder is None:
        print("kernel cache: disabled (EGPU_ARRAY_CACHE_DIR=off); nothing to clear")
        return EXIT_OK
    error = _check_folder(folder)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAIL
    if not folder.exists():
        print(f"removed 0 kernel files from {folder} (folder not created yet)")
        return EXIT_OK
    try:
        files = _kernel_files(folder)
    except OSError as exc:
        print(f"error: cannot read {folder}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if dry_run:
        print(f"would remove {len(files)} kernel files ({_human(_size(files))}) from {folder}")
        return EXIT_OK
    removed, freed, failed = 0, 0, []
    for p in files:
        try:
            size = p.stat().st_size
            p.unlink()
        except FileNotFoundError:  # another process removed it first: fine
            continue
        except OSError as exc:
            failed.append((p, exc))
            continue
        removed += 1
        freed += size
    print(f"removed {removed} kernel files ({_human(freed)}) from {folder}")
    for p, exc in failed:
        print(f"error: cannot remove {p.name}: {exc}", file=sys.stderr)
    return EXIT_FAIL if failed else EXIT_OK


def run(args) -> int:
    folder = _folder()
    if args.action == "info":
        return _info(folder)
    return _clear(folder, args.dry_run)
