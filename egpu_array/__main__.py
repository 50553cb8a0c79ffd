"""Command line: ``python -m egpu_array demo | info | cache | bench | selftest``.

Each subcommand lives in its own ``egpu_array/_cli_<name>.py`` module with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; adding one (``bench``, ``selftest``, ``cache``)
is a new module and one line in ``COMMANDS``.

Exit status: 0 everything went well, 1 a check failed (or the command itself failed), 2 usage error.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: subcommand -> (module, one-line help)
COMMANDS = {
    "demo": ("egpu_array._cli_demo", "run realistic workloads, check them against NumPy, time both"),
    "info": ("egpu_array._cli_info", "list the devices, their capabilities and the configuration"),
    "cache": ("egpu_array._cli_cache", "show (info) or empty (clear) the on-disk kernel cache"),
    "bench": ("egpu_array._cli_bench", "time the standard workloads on a device against NumPy"),
    "selftest": ("egpu_array._cli_selftest", "check every namespace function on a device against NumPy"),
}

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def resolve_device(name, command: str):
    """The device called ``name`` (the default device when None); on failure, None after telling
    the user on stderr what went wrong, which devices are present and where to look next."""
    from .backend.device import all_devices, get_device
    try:
        return get_device(name, command)
    except Exception as exc:  # unknown name, absent or broken hardware
        try:
            present = ", ".join(d.name for d in all_devices())
        except Exception:
            present = "(cannot list them)"
        reason = str(exc).split("; devices present")[0]
        if reason.startswith(command):  # "selftest: ..." or "selftest (the default device, ...): ..."
            reason = reason.split(": ", 1)[-1]
        default = f"(the default, EGPU_ARRAY_DEVICE={os.environ['EGPU_ARRAY_DEVICE']!r})" \
            if os.environ.get("EGPU_ARRAY_DEVICE") else "(the default)"
        print(f"{command}: cannot use device {name or default}: {reason}\n"
              f"{command}: devices present: {present}; choose one with --device "
              "(`python -m egpu_array info` shows each with its capabilities)", file=sys.stderr)
        return None


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    from . import __array_api_version__, __version__
    parser = argparse.ArgumentParser(
        prog="python -m egpu_array",
        description=f"egpu_array {__version__}: an Array API ({__array_api_version__}) library with "
                    "fused kernels. Environment: EGPU_ARRAY_DEVICE (default device), "
                    "EGPU_ARRAY_NUM_THREADS, EGPU_ARRAY_CACHE_DIR ('off' disables the disk cache).",
        epilog="exit status: 0 ok, 1 a check failed, 2 usage error")
    parser.add_argument("--version", action="version", version=f"egpu_array {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (modname, help_text) in COMMANDS.items():
        module = importlib.import_module(modname)
        p = sub.add_parser(name, help=help_text, description=module.__doc__.strip().splitlines()[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        modules[name] = module
    return parser, modules


def main(argv=None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)  # exits with 2 on a usage error
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return modules[args.command].run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
