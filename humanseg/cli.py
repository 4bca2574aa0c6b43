"""`humanseg` command line: dispatches lazily so each command imports only what it needs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

ML_COMMANDS = ("train", "evaluate", "segment", "export")


def configure_logging(level: str) -> None:
    """key=value friendly log lines on stderr."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ML_COMMANDS:
        return _run_ml(argv)
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from humanseg.core.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return int(args.func(settings, args, extra) or 0)


def _run_ml(argv: list[str]) -> int:
    """Hand model commands to ml.cli; core itself stays free of torch and ml imports."""
    import importlib

    try:
        ml_cli = importlib.import_module("humanseg.ml.cli")
    except ModuleNotFoundError as exc:  # e.g. the web image, which ships without ml/torch
        print(f"humanseg {argv[0]}: the model commands need the 'ml' extra ({exc})", file=sys.stderr)
        return 2
    return int(ml_cli.main(argv) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="humanseg", description="Cut people out of photos, at batch scale.",
                                     epilog="ML commands (forwarded to ml.cli): " + ", ".join(ML_COMMANDS))
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("up", help="run the whole platform on this machine").set_defaults(func=_up)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("revision", nargs="?", default=None)
    db.set_defaults(func=_db)
    sub.add_parser("worker", help="run a Celery worker (extra args go to celery)").set_defaults(func=_worker)
    sub.add_parser("web", help="run the web server (gunicorn)").set_defaults(func=_web)
    sweep = sub.add_parser("sweep", help="re-queue jobs with expired leases or lost doorbells "
                           "(each worker also runs this loop unless HUMANSEG_SWEEPER=0)")
    sweep.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                       help="run the sweep loop, every SECONDS (default: one pass)")
    sweep.add_argument("--loop", action="store_true", help="run the sweep loop at the default interval")
    sweep.set_defaults(func=_sweep)
    return parser


def _up(settings, args, extra) -> int:
    from humanseg.up import run_up

    return run_up(settings)


def _db(settings, args, extra) -> int:
    from humanseg.core import migrate

    if args.action == "upgrade":
        migrate.upgrade(settings.database_url, args.revision or "head")
    else:
        migrate.downgrade(settings.database_url, args.revision or "-1")
    return 0


def _worker(settings, args, extra) -> int:
    from humanseg.worker.celery_app import make_celery

    app = make_celery(settings)
    argv = ["worker", "-Q", settings.queue, "--loglevel", settings.log_level,
            "--concurrency", str(settings.worker_concurrency), "--without-gossip",
            "--without-mingle"]
    app.worker_main(argv + list(extra))
    return 0


def _web(settings, args, extra) -> int:
    # gevent workers and the request-body deadline: see humanseg/gunicorn_conf.py.
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:humanseg.gunicorn_conf",
            "--bind", f"{settings.host}:{settings.port}",
            "--timeout", str(int(settings.segment_wait_seconds) + 60), "--no-control-socket",
            # gunicorn's most: the app itself answers URLs over 4 KB (JSON 414 on API paths).
            "--limit-request-line", "8190", *extra, "humanseg.web:create_app()"]
    os.execv(sys.executable, argv)
    return 0  # not reached


def _sweep(settings, args, extra) -> int:
    from humanseg.worker.sweeper import run_standalone, sweep_once

    if args.loop or args.every:
        run_standalone(settings, every=args.every or None)
        return 0
    result = sweep_once(settings)
    # Removed orphan originals are logged one by one (event=orphan_original_removed).
    print(f"requeued={result.requeued} resent={result.resent} failed={result.failed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
