"""Replace (or append) one "## <Title>" section of bench/RESULTS.md.

    python bench/results_section.py RESULTS.md "Hook" < section.md

The section text on stdin must start with its "## <Title>" heading.  Every
other section is kept as it is, so each benchmark owns only its own figures.
"""

import re
import sys
from pathlib import Path

INTRO = ("# ringflow benchmark results\n\n"
         "Measured figures from the programs in `bench/`.  Each section below is rewritten by "
         "the script that produced it; everything else is kept.\n")


def main() -> None:
    path, title = Path(sys.argv[1]), sys.argv[2]
    section = sys.stdin.read().rstrip("\n") + "\n"
    text = path.read_text() if path.exists() else INTRO
    m = re.search(rf"^## {re.escape(title)}[ \t]*\n", text, flags=re.M)
    if m:
        nxt = re.search(r"^## ", text[m.end():], flags=re.M)
        end = m.end() + nxt.start() if nxt else len(text)
        text = text[:m.start()] + section + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
