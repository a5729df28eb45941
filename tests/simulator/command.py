"""Run a subcommand the way `cc-kpi` does: a top parser with `--config`, our
`add_subcommands`, then `args.func(args)`."""

from __future__ import annotations

import argparse
from types import ModuleType


def run_command(module: ModuleType, *argv: str) -> int:
    top = argparse.ArgumentParser(prog="cc-kpi")
    top.add_argument("--config")
    module.add_subcommands(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(argv)
    return args.func(args)
