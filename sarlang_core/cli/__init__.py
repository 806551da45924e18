"""`sarlang-cli`: every capability from a shell, one module per command group.

``scene`` (info, preprocess), ``models`` (models, ask, caption), ``dataset``, ``bench`` (with the
``score-*`` steps in ``score``), ``train`` (LoRA fine-tuning), ``explain`` (per-word maps),
``export_onnx`` (models for ONNX Runtime).
Each group adds its sub-parsers and sets ``handler`` on them;
:func:`main` dispatches and turns errors into one line on stderr, exit 1 (2 for usage);
``--debug`` (before or after the command) shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from ..errors import SarlangError
from ..variant import field_message
from . import bench, dataset, explain, export_onnx, models, scene, train
from .common import UsageParser

__all__ = ["build_parser", "main"]


def version_line() -> str:
    """'sarlang-cli 0.1.0 · full (torch 2.13.0) · from source' (or 'field (no torch)', 'frozen build').
    Reads torch's version from its package metadata: torch itself is not imported."""
    from importlib import metadata
    from importlib.util import find_spec

    from .. import __version__

    if find_spec("torch") is not None:
        try:
            variant = f"full (torch {metadata.version('torch')})"
        except metadata.PackageNotFoundError:   # a frozen build keeps the module, not always its metadata
            variant = "full (torch)"
    else:
        variant = "field (no torch: no local models, fine-tuning or per-word maps)"
    where = "frozen build" if getattr(sys, "frozen", False) else "from source"
    return f"sarlang-cli {__version__} · {variant} · {where}"


class _Version(argparse.Action):
    """--version: the line as it is (argparse's own action wraps it at the terminal's width)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog="sarlang-cli", description="SARLANG Studio from the command line.")
    p.add_argument("--version", action=_Version, nargs=0,
                   help="the version and what this install can do (full: torch; field: without it)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    sub.required = True
    scene.add_parsers(sub)
    models.add_parsers(sub)
    explain.add_parsers(sub)
    export_onnx.add_parsers(sub)
    dataset.add_parsers(sub)
    bench.add_parsers(sub)
    train.add_parsers(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return args.handler(args)
    except SarlangError as exc:
        if debug:
            raise
        print(f"sarlang-cli: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sarlang-cli: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # an unexpected failure still gets one line unless --debug
        if debug:
            raise
        field = field_message(exc)     # a field install (no torch) reaching for a full-only library
        if field:
            print(f"sarlang-cli: error: {field}", file=sys.stderr)
            return 1
        print(f"sarlang-cli: error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1
