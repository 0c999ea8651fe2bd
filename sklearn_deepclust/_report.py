"""Plain-text reporting shared by the demo and the benchmarks."""

__all__ = ["markdown_table"]


def markdown_table(header, rows):
    """Format rows as a GitHub-flavoured markdown table with aligned columns.

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequence
        Cells are converted with ``str``; floats should be formatted already.

    Returns
    -------
    str
    """
    cells = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])
