"""Child process of test_bounded_memory.py: ingest one file under an address-space limit set
by the parent, print its report's outcome and reason and this process's peak RSS as JSON.

Usage: python hostile_child.py DATABASE_URL PATH KEY
"""

from __future__ import annotations

import json
import os
import resource
import sys


def main() -> None:
    db_url, path, key = sys.argv[1:4]
    import psycopg2

    from cardstatus.config import load_settings
    from cardstatus.ingest import SourceInfo, ingest_retrying

    conn = psycopg2.connect(db_url)
    try:
        source = SourceInfo(key=key, partner="acme", size_bytes=os.path.getsize(path))
        report = ingest_retrying(
            conn,
            lambda: open(path, "rb"),  # noqa: SIM115  (ingest_retrying closes it)
            source,
            load_settings(),
        )
    finally:
        conn.close()
    peak_kb = _peak_rss_kb()
    print(
        json.dumps(
            {
                "outcome": report["outcome"],
                "reason": report.get("reason"),
                "counts": report["counts"],
                "peak_rss_mb": round(peak_kb / 1024, 1),
            }
        )
    )


def _peak_rss_kb() -> int:
    """This program's own peak RSS: VmHWM of its address space. (ru_maxrss survives execve on
    Linux, so it would report the forking pytest process's size when that was larger.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main()
