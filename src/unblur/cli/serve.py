"""``unblur serve``: the local web page (needs the ``web`` extra)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from unblur.cli._common import HelpFormatter, add_kernel_size, add_threads, positive_int
from unblur.errors import ConfigError, UnblurError

INSTALL_HINT = 'unblur serve needs the web extra: pip install "unblur[web]" (FastAPI and uvicorn)'
AB_METHODS = ("auto", "network", "blind", "motion")

DESCRIPTION = """\
A local web page to restore photos and to judge restorations blind.

Open the address it prints in a browser:
  Restore a photo  drop a photo, choose the method and model (or auto), watch the
                   progress, compare before and after with a slider and zoom, see the
                   estimated motion field, download the result.
  Blind A/B test   two restorations of the same photo by different methods, side by
                   side in random order; pick the sharper one (or say they are equal).
                   Votes are kept in DATA/votes.sqlite3.
  A/B results      win rate per method (a tie counts half) with its 95% Wilson interval.

It listens on 127.0.0.1 (this computer only) unless --host says otherwise. Uploads
are limited in size and pixels, must be pictures, are named by the server and kept in
--data-dir with everything else it writes. Restorations run one at a time in the
background; at most --queue wait, further uploads are told the queue is full.
"""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "unblur" / "serve"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="local web page: restore photos, blind A/B judgement",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where uploads, results and votes go (default: ~/.local/share/unblur/serve)",
    )
    p.add_argument("--max-upload-mb", type=positive_int, default=50, help="largest upload")
    p.add_argument(
        "--max-pixels", type=positive_int, default=50_000_000, help="largest picture decoded"
    )
    p.add_argument("--queue", type=positive_int, default=8, help="uploads that may wait")
    p.add_argument(
        "--ab-methods",
        default="network,blind",
        help=f"methods the blind A/B test compares (two or more of {', '.join(AB_METHODS)})",
    )
    add_kernel_size(p)
    p.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda")
    add_threads(p)
    p.set_defaults(run=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from unblur.web.app import ServerSettings, create_app
    except ImportError:
        raise UnblurError(INSTALL_HINT) from None
    from unblur.cli._common import apply_threads, check_kernel_size, ensure_folder
    from unblur.restoration.network import resolve_device

    check_kernel_size(args.kernel_size)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    ab = tuple(m.strip() for m in args.ab_methods.split(",") if m.strip())
    if len(set(ab)) < 2 or any(m not in AB_METHODS for m in ab):
        raise ConfigError(
            f"--ab-methods needs two or more of {', '.join(AB_METHODS)}, got {args.ab_methods!r}"
        )
    data = args.data_dir or default_data_dir()
    ensure_folder(data)
    apply_threads(args.threads)
    settings = ServerSettings(
        data_dir=data,
        max_upload_bytes=args.max_upload_mb * 2**20,
        max_pixels=args.max_pixels,
        queue_capacity=args.queue,
        ab_methods=ab,
        device=str(resolve_device(args.device)),
        kernel_size=args.kernel_size,
    )
    app = create_app(settings)
    if not is_loopback(args.host):
        print(
            f"unblur: warning: listening on {args.host}: anyone who can reach this address "
            "can upload pictures and vote (no login)",
            file=sys.stderr,
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"unblur serve: open http://{shown}:{args.port}/ (data in {data}; Ctrl-C stops)",
        file=sys.stderr,
    )
    # the job threads are daemons: Ctrl-C does not wait for a restoration to finish (its
    # files are written atomically, so none is left half-written)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
