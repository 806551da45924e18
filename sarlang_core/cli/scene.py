"""`sarlang-cli info` and `sarlang-cli preprocess`: describe a scene, write it processed."""

from __future__ import annotations

import json
import sys

from ..errors import CancelledError, SarlangError
from ..preprocess.filters.params import DAMPING, LOOKS, SNAP_EXACT, WINDOW, Param
from ..preprocess.pipeline import FILTER_NAME, LIMITS, LOW, QUANTITY, Pipeline, StretchSpec
from ..progress import CancelToken
from .common import ProgressBar, parse_band, stop_on_signals, without_libtiff_noise


def _help(param: Param) -> str:
    """A flag's help from the recipe's own description of the value (help text and bounds)."""
    if param.kind is bool or param.choices:
        return param.help
    return f"{param.help} ({param.bounds_text()})"


def add_parsers(sub) -> None:
    info = sub.add_parser("info", help="describe a scene as JSON")
    info.add_argument("path")
    info.set_defaults(handler=cmd_info)

    pre = sub.add_parser("preprocess", help="apply the preprocessing chain and write a GeoTIFF")
    pre.add_argument("input")
    pre.add_argument("output")
    pre.add_argument("--pipeline", metavar="FILE.json", help="start from a saved pipeline; flags override it")
    pre.add_argument("--band", help=Pipeline.__dataclass_fields__["band"].metadata["help"])
    pre.add_argument("--quantity", choices=QUANTITY.choices, help=_help(QUANTITY))
    pre.add_argument("--filter", choices=FILTER_NAME.choices, help=_help(FILTER_NAME))
    pre.add_argument("--window", type=int, help=_help(WINDOW))
    pre.add_argument("--looks", type=float, help=_help(LOOKS))
    pre.add_argument("--damping", type=float, help=_help(DAMPING))
    pre.add_argument("--snap-exact", action="store_true", default=None, help=_help(SNAP_EXACT))
    db = pre.add_mutually_exclusive_group()
    db.add_argument("--db", dest="db", action="store_true", default=None, help="10 log10 (default)")
    db.add_argument("--no-db", dest="db", action="store_false", help="keep linear values")
    pre.add_argument("--stretch", metavar="LO,HI|none",
                     help=f"percentile stretch to uint8, percentiles {LOW.range_text()} "
                          f"(default {StretchSpec().low:g},{StretchSpec().high:g})")
    pre.add_argument("--exact-limits", action="store_true",
                     help=f"stretch limits {LIMITS.choices[-1]!r} instead of {LIMITS.choices[0]!r}: {LIMITS.help}")
    pre.add_argument("--compress", choices=("zstd", "deflate", "lzw", "none"), default="zstd",
                     help="GeoTIFF compression (default zstd; deflate for older GIS tools)")
    pre.add_argument("--no-overviews", dest="overviews", action="store_false",
                     help="skip building overviews in the output (faster; slower to open later)")
    pre.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (never the input)")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    pre.set_defaults(handler=cmd_preprocess)


def pipeline_from_args(args):
    pipe = Pipeline.load(args.pipeline) if args.pipeline else Pipeline()
    if args.band is not None:
        pipe = pipe.with_(band=parse_band(args.band))
    if args.quantity is not None:
        pipe = pipe.with_(quantity=args.quantity)
    changes = {k: v for k, v in (("name", args.filter), ("window", args.window), ("looks", args.looks),
                                 ("damping", args.damping), ("snap_exact", args.snap_exact)) if v is not None}
    if changes:
        pipe = pipe.with_filter(**changes)
    if args.db is not None:
        pipe = pipe.with_(db=args.db)
    if args.stretch is not None:
        if args.stretch.strip().lower() == "none":
            pipe = pipe.with_(stretch=None)
        else:
            try:
                lo, hi = (float(v) for v in args.stretch.split(","))
            except ValueError:
                raise SarlangError(f"--stretch wants LO,HI percentiles or 'none', got {args.stretch!r}") from None
            pipe = pipe.with_(stretch=StretchSpec(lo, hi))
    if args.exact_limits and pipe.stretch is not None:
        pipe = pipe.with_(stretch=StretchSpec(pipe.stretch.low, pipe.stretch.high, "exact"))
    return pipe


def cmd_info(args) -> int:
    from ..io import open_scene

    with open_scene(args.path) as scene:
        print(json.dumps(scene.info(), indent=2))
    return 0


def cmd_preprocess(args) -> int:
    from ..io.export import OutputExistsError
    from ..services import SceneSession
    from ..services.export import check_output_format, export_processed

    pipeline = pipeline_from_args(args)
    check_output_format(args.output)
    cancel = CancelToken()
    session = SceneSession.open(args.input)
    try:
        session.filter_key(pipeline)  # fail early on a band the scene lacks
        for warning in session.chain_warnings(pipeline):
            print(f"warning: {warning}", file=sys.stderr)
        with without_libtiff_noise(), ProgressBar(args.quiet) as progress, stop_on_signals(cancel) as stopped:
            try:
                out = export_processed(session, pipeline, args.output, overwrite=args.overwrite,
                                       compress=args.compress, overviews=args.overviews, progress=progress,
                                       cancel=cancel)
            except OutputExistsError as exc:
                raise SarlangError(f"{exc.path}: already exists; pass --overwrite to replace it") from None
            except CancelledError:
                if stopped:
                    print(f"sarlang-cli: stopped by {stopped[0]}; nothing was written", file=sys.stderr)
                    return 128 + stopped[1]
                raise
    finally:
        session.close()
    print(out)
    return 0
