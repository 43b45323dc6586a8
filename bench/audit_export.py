"""Child process of the audit benchmark: export one tenant's log and report its peak RSS.

Run as ``python -m bench.audit_export URL TENANT USER_ID FORMAT`` (the user is one of the
tenant's auditors or admins, as the API would serve them); prints one JSON line.
A separate process, so the peak resident set size is the export's own and not
whatever the benchmark process held. It is read from ``VmHWM`` in
``/proc/self/status``, which starts afresh at ``exec``; ``ru_maxrss`` would not
do, because Linux carries it over from the parent at ``fork`` (a 300 MB
parent would make every child "peak" at 300 MB).
"""

from __future__ import annotations

import json
import sys
import time

from lockbox.service import audit
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store.db import Database


def peak_rss_mb() -> float:
    """This process's peak resident set size (``VmHWM``), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def main() -> None:
    url, tenant, user_id, fmt = sys.argv[1:5]
    app = Lockbox(Database(url))
    with app.read() as tx:
        user = repo.get_user(tx.conn, user_id)
    if user is None:
        raise SystemExit(f"no user {user_id}")
    reader = user.principal()
    before = peak_rss_mb()
    start = time.perf_counter()
    chunks = size = 0
    with open("/dev/null", "w") as sink:  # a client reading as fast as it can
        for chunk in audit.export(app, reader, tenant, fmt):
            sink.write(chunk)
            chunks += 1
            size += len(chunk)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    app.db.dispose()
    print(
        json.dumps(
            {
                "chunks": chunks,
                "bytes": size,
                "seconds": seconds,
                "rss_before_mb": before,
                "peak_rss_mb": peak,
            }
        )
    )


if __name__ == "__main__":
    main()
