"""gunicorn settings of the web tier: `humanseg web` and the web image (`-c python:humanseg.web.gunicorn_conf`).

gevent workers: a connection costs a greenlet, so clients sending slowly cannot take every slot
and /healthz and job polls keep answering. Request headers must arrive within `keepalive`
seconds (gunicorn's gevent worker times the header read with it); bodies within the deadline of
humanseg.web.body_deadline (HUMANSEG_BODY_TIMEOUT_SECONDS, HUMANSEG_BODY_MIN_RATE).
.env.example's placeholder secret is refused unless every bound address is loopback, and API
keys are required as soon as one is not. Logging is set up once, in the master, before workers
fork (they inherit it). Command-line flags override these values; `humanseg web` and the web
image pass only --bind.
"""

import gc
import os

from humanseg.core.settings import Settings

# A config file is read once, at start: the one place gunicorn lets settings shape its options.
_settings = Settings.from_env()
# The addresses the master bound (when_ready), which every worker it forks afterwards inherits.
_bound: tuple[str, ...] = ()

wsgi_app = "humanseg.web.gunicorn_conf:web_app()"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
worker_connections = 1000
keepalive = 5
timeout = int(_settings.segment_wait_seconds) + 60  # a /segment wait plus room to answer
graceful_timeout = 10
accesslog = "-"
# gunicorn's sendfile path never counts the bytes it sends: every file response was logged as 0
# bytes. Under gevent the copy goes through the event loop's send() anyway, so this costs little.
sendfile = False
limit_request_line = 8190  # gunicorn's most: the app answers URLs over 4 KB itself (JSON 414)
control_socket_disable = True


def on_starting(server) -> None:
    """Set up logging and the metrics folder in the master; workers forked from it inherit both."""
    from humanseg.core.logsetup import configure_logging
    from humanseg.core.metrics_dir import prepare_multiproc_dir

    configure_logging(_settings.log_level)
    prepare_multiproc_dir(_settings, "web")  # before any worker imports prometheus_client


def child_exit(server, worker) -> None:
    """A worker's gauges die with it (its counters keep counting in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def bound_hosts(listeners) -> list[str]:
    """The addresses of gunicorn's listening sockets (unix sockets are local: left out).

    The master's listeners wrap a socket (`.sock`); a gevent worker's are the sockets themselves."""
    names = [getattr(lnr, "sock", lnr).getsockname() for lnr in listeners]
    return [name[0] for name in names if isinstance(name, tuple)]


def when_ready(server) -> None:
    """Once the sockets are bound: refuse the placeholder secret unless they are all loopback."""
    from humanseg.web.exposure import check_secret, exposed

    global _bound
    hosts = bound_hosts(server.LISTENERS)
    _bound = tuple(hosts)
    # ExposedSecret is a RuntimeError: gunicorn prints it and exits 1 before serving anything.
    warning = check_secret(_settings, hosts)
    if warning:
        server.log.warning(warning)
    if exposed(hosts):
        from humanseg.core.logfmt import logkv

        server.log.info(logkv(event="api_keys_required", listening=",".join(exposed(hosts))))


def web_app():
    """One worker's app, told the addresses the master bound (--bind may differ from HUMANSEG_HOST),
    so that it decides once whether they require API keys. Workers load it after when_ready: this
    config never preloads the app in the master."""
    from humanseg.web import create_app

    return create_app(bound=_bound)


def post_worker_init(worker) -> None:
    """Wrap this worker's app, once loaded, in the body deadline, and freeze what loading made."""
    from humanseg.core.logfmt import logkv
    from humanseg.web.body_deadline import BodyDeadline

    settings = worker.wsgi.extensions["humanseg"].settings  # the app of web_app()
    worker.wsgi = BodyDeadline(worker.wsgi, settings.body_timeout_seconds, settings.body_min_rate)
    # What loading the app made (Flask, SQLAlchemy, PIL, routes...) lives as long as the process.
    # Frozen, the collector never scans it again: a full collection of it took about 40 ms, a
    # stall of every request this process was serving.
    gc.collect()
    gc.freeze()
    worker.log.info(logkv(event="gc_frozen", pid=os.getpid(), objects=gc.get_freeze_count()))


def worker_exit(server, worker) -> None:
    """End a web worker here, with its exit code, instead of through interpreter teardown.

    Under gevent, teardown runs logging's weakref callbacks after gevent's thread module is
    half-dismantled: every worker printed a `TypeError: 'NoneType' object is not callable`
    traceback on a clean stop. Nothing is left to clean up at this point (the master marks the
    worker's metrics dead in child_exit), so the exit is immediate."""
    import logging
    import sys

    exc = sys.exc_info()[1]  # gunicorn calls this from a `finally`: a failing worker's SystemExit
    code = exc.code if isinstance(exc, SystemExit) else (1 if exc else 0)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)
