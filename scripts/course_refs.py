"""Point every code reference of docs/course.md at the line that holds its excerpt.

A reference reads [`dlrun/kernels/losses.py:24`](../dlrun/kernels/losses.py#L24): `excerpt`;
when code moves, this rewrites both line numbers to the one line of the file that contains
the excerpt (it refuses an excerpt found on no line or on several).
tests/tour/test_course_doc.py checks that every reference points at its excerpt.

    python scripts/course_refs.py [docs/course.md]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: [`path:line`](../path#Lline): `excerpt`
REFERENCE = re.compile(r"\[`(dlrun/[^`:]+):(\d+)`\]\(\.\./([^)#]+)#L(\d+)\): `([^`]+)`")


def lines_holding(path: Path, excerpt: str) -> list[int]:
    """1-based numbers of the lines of ``path`` that contain ``excerpt``."""
    text = path.read_text().splitlines()
    return [i + 1 for i, line in enumerate(text) if excerpt in line]


def main(doc: Path) -> int:
    text = doc.read_text()
    problems = []

    def fix(m: re.Match) -> str:
        path, excerpt = m.group(1), m.group(5)
        found = lines_holding(ROOT / path, excerpt) if (ROOT / path).is_file() else []
        if len(found) != 1:
            problems.append(f"{path}: `{excerpt}` is on {len(found)} lines {found[:5]}")
            return m.group(0)
        n = found[0]
        return f"[`{path}:{n}`](../{path}#L{n}): `{excerpt}`"

    new = REFERENCE.sub(fix, text)
    for p in problems:
        print(p, file=sys.stderr)
    if new != text:
        doc.write_text(new)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "course.md"))
