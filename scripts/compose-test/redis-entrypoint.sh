#!/bin/sh
# redis-server as user redis, reachable from the stack's network (as the
# official image's entrypoint does); anything else runs as given.
set -eu
if [ "${1:-}" = redis-server ]; then
    shift
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no "$@"
fi
exec "$@"
