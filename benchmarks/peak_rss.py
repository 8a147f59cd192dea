"""Runs a command and prints its peak resident memory in KiB.

    python benchmarks/peak_rss.py python scripts/train.py fit --config ...

On Linux a child's ``ru_maxrss`` also counts the process it was forked from
(``exec`` folds the old image's high-water mark into it), so a benchmark
process holding a million samples would report its own size for every child.
This small process is the parent instead; its own few MiB are the same for
both sides.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> int:
    process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    print(usage.ru_maxrss)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
