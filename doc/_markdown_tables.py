"""Turn ``benchmarks/README.md`` into reStructuredText for the benchmark page.

The benchmark scripts write markdown (headings, pipe tables, lists, code
fences, inline code); sphinx reads reST. This handles that subset and
nothing more: the page is rebuilt from the README at every ``make doc``.
"""

import re

_UNDERLINES = {1: "=", 2: "-", 3: "~", 4: "^"}


def _inline(text):
    text = text.replace("<br>", "; ")
    text = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"`\1 <\2>`__", text)
    return text


def _cells(line):
    return [_inline(cell.strip()) or ".." for cell in line.strip().strip("|").split("|")]


def _table(rows):
    header, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        out.append("   * - " + row[0])
        out.extend("     - " + cell for cell in row[1:])
    return out + [""]


def markdown_to_rst(markdown, top_level=2):
    """reST for ``markdown``; its ``#`` headings start at section level ``top_level``."""
    lines, out, i = markdown.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading:
            level = len(heading.group(1)) + top_level - 1
            title = _inline(heading.group(2))
            out += [title, _UNDERLINES[min(level, 4)] * len(title), ""]
        elif line.startswith("```"):
            out += [".. code-block:: text", ""]
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append("   " + lines[i])
                i += 1
            out.append("")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            out += _table(rows)
            continue
        else:
            starts_list = re.match(r"^\s*([-*]|\d+\.)\s", line)
            previous = out[-1] if out else ""
            if (
                starts_list
                and previous.strip()
                and not re.match(r"^\s*([-*]|\d+\.)\s|^\s", previous)
            ):
                out.append("")  # reST needs a blank line before a list
            out.append(_inline(line))
        i += 1
    return "\n".join(out) + "\n"
