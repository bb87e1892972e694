"""Check that bench/RESULTS.md's figures trace to scripts and raw data.

For every "## " section of bench/RESULTS.md:
  - it names the command that made it: a backticked `make bench...`,
    `... bench/<script>.py|sh ...` or `./bench/...` command;
  - its raw data is committed: every `*.jsonl` file it names exists in the
    repository and is tracked by git (not under build/, which is never
    committed) and small (<= 2 MB), or its raw lines are inline in a ``` block
    of JSON lines;
  - a section with a table of figures has raw data by one of these means, or
    says plainly that a figure is "not reproduced".
README.md must not point at raw data outside the repository (build/bench/),
and every row of its "## Benchmarks" table names, in its Section column,
sections that exist in bench/RESULTS.md.

    python bench/check_figures.py [--repo DIR]      exit 0 when all holds, 1 with the reasons

Meant to be run by tests/run_all.sh (the coordinator wires it in).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

MAX_RAW_BYTES = 2 << 20
COMMAND = re.compile(r"`(?:[A-Z_]+=\S+ )*(?:nice )?(?:make bench[\w-]*|(?:\.venv/bin/)?python3? bench/\w+\.py"
                     r"|\./bench/\w+\.sh|bench/run_\w+\.sh)[^`]*`")
JSONL = re.compile(r"`([\w./-]+\.jsonl)`")
INLINE_JSON = re.compile(r"^```[a-z]*\n\{.*?^```", re.M | re.S)
TABLE_ROW = re.compile(r"^\|.*\d.*\|$", re.M)


def sections(text: str) -> list[tuple[str, str]]:
    parts = re.split(r"^## ", text, flags=re.M)
    return [(p.split("\n", 1)[0].strip(), p) for p in parts[1:]]


def tracked(repo: Path, path: str) -> bool:
    r = subprocess.run(["git", "-C", str(repo), "ls-files", "--error-unmatch", path],
                       capture_output=True, text=True)
    return r.returncode == 0


def check(repo: Path) -> list[str]:
    problems = []
    results = repo / "bench" / "RESULTS.md"
    for title, body in sections(results.read_text()):
        where = f"bench/RESULTS.md, section \"{title}\""
        if not COMMAND.search(body):
            problems.append(f"{where}: names no command (a backticked `make bench-...` or "
                            "`python bench/<script>.py ...`)")
        files = sorted(set(JSONL.findall(body)))
        for f in files:
            p = repo / f
            if f.startswith("build/") or not p.is_file():
                problems.append(f"{where}: raw lines `{f}` are not in the repository")
            elif not tracked(repo, f):
                problems.append(f"{where}: raw lines `{f}` exist but are not committed (git add)")
            elif p.stat().st_size > MAX_RAW_BYTES:
                problems.append(f"{where}: raw lines `{f}` are {p.stat().st_size:,} bytes "
                                f"(keep raw files under {MAX_RAW_BYTES:,})")
        inline = bool(INLINE_JSON.search(body))
        if TABLE_ROW.search(body) and not files and not inline and "not reproduced" not in body:
            problems.append(f"{where}: a table of figures without raw lines (a committed .jsonl, an "
                            "inline ``` block of JSON lines, or a plain \"not reproduced\")")
    readme = (repo / "README.md").read_text()
    for m in re.finditer(r"build/bench/\S+", readme):
        problems.append(f"README.md: points at uncommitted raw data {m.group(0)}")
    titles = {t for t, _ in sections(results.read_text())}
    bench = dict(sections(readme)).get("Benchmarks", "")
    rows = [ln for ln in bench.splitlines() if ln.startswith("|")]
    if not rows or "Section" not in rows[0]:
        problems.append("README.md: the Benchmarks table has no Section column naming where each figure "
                        "comes from")
    else:
        col = [c.strip() for c in rows[0].strip("|").split("|")].index("Section")
        for ln in rows[2:]:
            cells = [c.strip() for c in ln.strip("|").split("|")]
            for name in section_names(cells[col], titles):
                if name not in titles:
                    problems.append(f"README.md, Benchmarks row '{cells[0]}': section '{name}' is not in "
                                    "bench/RESULTS.md")
    return problems


def section_names(cell: str, titles: set[str]) -> list[str]:
    """The comma-separated section names of a Section cell; a title that
    itself holds a comma ("End to end, model latency") is taken whole."""
    parts, names, i = [n.strip() for n in cell.split(",")], [], 0
    while i < len(parts):
        if i + 1 < len(parts) and f"{parts[i]}, {parts[i + 1]}" in titles:
            names.append(f"{parts[i]}, {parts[i + 1]}")
            i += 2
        else:
            names.append(parts[i])
            i += 1
    return names


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    a = ap.parse_args()
    problems = check(Path(a.repo))
    for p in problems:
        print(f"check_figures: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("check_figures: every bench/RESULTS.md section names its command and its raw lines are committed")


if __name__ == "__main__":
    main()
