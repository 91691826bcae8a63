"""Keeps the code in docs/ identical to compiled examples.

A guide says <!-- snippet: examples/file.cpp#name --> followed by a ```cpp block; the block
must equal the lines between the two `// [name]` markers of that file (dedented).
  python3 scripts/snippets.py          check (exit 1 on any difference)
  python3 scripts/snippets.py --update rewrite the blocks from the examples
"""
import re
import sys
import textwrap
from pathlib import Path

root = Path(__file__).resolve().parent.parent
marker = re.compile(r"<!-- snippet: (\S+)#(\S+) -->\n```cpp\n(.*?)```", re.S)


def region(path, name):
    lines = (root / path).read_text().splitlines()
    opens = [i for i, l in enumerate(lines) if re.search(rf"// \[{re.escape(name)}\]", l)]
    if len(opens) != 2:
        sys.exit(f"{path}: expected two '// [{name}]' markers, found {len(opens)}")
    body = "\n".join(lines[opens[0] + 1:opens[1]])
    return textwrap.dedent(body).strip("\n") + "\n"


def main():
    update = "--update" in sys.argv
    stale = 0
    for doc in sorted((root / "docs").glob("*.md")) + [root / "README.md"]:
        text = doc.read_text()

        def replace(m):
            nonlocal stale
            want = region(m.group(1), m.group(2))
            if m.group(3) != want:
                stale += 1
                if not update:
                    print(f"{doc.relative_to(root)}: snippet {m.group(1)}#{m.group(2)} differs from the example")
            return f"<!-- snippet: {m.group(1)}#{m.group(2)} -->\n```cpp\n{want}```"

        new = marker.sub(replace, text)
        if update and new != text:
            doc.write_text(new)
    if stale and not update:
        sys.exit(1)
    print("snippets: " + ("updated" if update else "all match the compiled examples"))


main()
