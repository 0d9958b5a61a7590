"""gunicorn reads this file from the directory it starts in (scripts/up.sh and the benchmarks start
it in the repository root); command-line options still win.

Each worker loads every view module at start and then freezes everything it has allocated so far
out of the garbage collector's reach. Without this, a full collection walks the ~160,000 objects of
Django, DRF, NumPy and the views every so often, pausing the worker for about 50 ms; a pause that
falls while the worker holds a workspace's audit-chain lock stalls every request of that workspace.
"""

import gc


def post_worker_init(worker):
    from django.urls import get_resolver

    get_resolver().url_patterns  # import the URLconf and with it every view module  # noqa: B018
    gc.collect()
    gc.freeze()
    worker.log.info(
        "worker %s: %d objects frozen out of the garbage collector", worker.pid, gc.get_freeze_count()
    )
