"""One JSON line describing a benchmark invocation, for its raw-lines file:
when, which command, which commit, on what machine, how loaded.  The report
scripts print their Date/Machine/Load lines from it, so a section can be
regenerated from the committed raw lines alone.

    python bench/bench_meta.py NAME "COMMAND" [start|end]
    -> {"bench": NAME, "meta": {"when": "start", "date": ..., "load": [1, 5, 15 min], ...}}
"""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def meta(command: str, when: str = "start") -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or None
    return {"when": when, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "command": command, "commit": commit, "load": [round(x, 2) for x in os.getloadavg()],
            "nice": os.nice(0), "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version()}


def main() -> None:
    name, command = sys.argv[1], sys.argv[2]
    when = sys.argv[3] if len(sys.argv) > 3 else "start"
    print(json.dumps({"bench": name, "meta": meta(command, when)}), flush=True)


if __name__ == "__main__":
    main()
