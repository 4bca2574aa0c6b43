"""gunicorn settings of the web tier: `humanseg web` and the web image (`-c python:humanseg.gunicorn_conf`).

gevent workers: a connection costs a greenlet, so clients sending slowly cannot take every slot
and /healthz and job polls keep answering. Request headers must arrive within `keepalive`
seconds (gunicorn's gevent worker times the header read with it); bodies within the deadline of
humanseg.body_deadline (HUMANSEG_BODY_TIMEOUT_SECONDS, HUMANSEG_BODY_MIN_RATE).
.env.example's placeholder secret is refused unless every bound address is loopback.
Command-line flags override these values.
"""

worker_class = "gevent"
workers = 2
worker_connections = 1000
keepalive = 5
timeout = 120
graceful_timeout = 10
accesslog = "-"


def when_ready(server) -> None:
    """Once the sockets are bound: refuse the placeholder secret unless they are all loopback."""
    from humanseg.core.settings import Settings
    from humanseg.exposure import check_secret

    hosts = [lnr.sock.getsockname()[0] for lnr in server.LISTENERS
             if isinstance(lnr.sock.getsockname(), tuple)]  # unix sockets are local
    # ExposedSecret is a RuntimeError: gunicorn prints it and exits 1 before serving anything.
    warning = check_secret(Settings.from_env(), hosts)
    if warning:
        server.log.warning(warning)


def post_worker_init(worker) -> None:
    """Wrap the app in the body deadline once this worker has loaded it (settings read here)."""
    from humanseg.body_deadline import BodyDeadline
    from humanseg.core.settings import Settings

    settings = Settings.from_env()
    worker.wsgi = BodyDeadline(worker.wsgi, settings.body_timeout_seconds, settings.body_min_rate)
