"""The result table."""

from __future__ import annotations

from dataclasses import dataclass

HEADER = (
    "case", "rows", "seconds", "rows/s", "raw bound rows/s", "ratio", "peak RSS", "goal", "met",
)  # fmt: skip
NUMERIC = frozenset({1, 2, 3, 4, 5, 6})


@dataclass
class Row:
    """One printed line: a case, its measurements and whether its goal was met."""

    case: str
    rows: int | None = None
    seconds: float | None = None
    raw_rate: float | None = None
    ratio: float | None = None
    peak_rss_kb: int | None = None
    goal: str = ""
    met: bool | None = None

    @property
    def rate(self) -> float | None:
        if self.rows is None or not self.seconds:
            return None
        return self.rows / self.seconds

    def cells(self) -> tuple[str, ...]:
        return (
            self.case,
            _number(self.rows),
            "-" if self.seconds is None else f"{self.seconds:.2f}",
            _number(self.rate),
            _number(self.raw_rate),
            "-" if self.ratio is None else f"{self.ratio:.2f}x",
            "-" if self.peak_rss_kb is None else f"{megabytes(self.peak_rss_kb):.1f} MB",
            self.goal,
            {True: "yes", False: "NO", None: "-"}[self.met],
        )


def megabytes(kilobytes: int) -> float:
    """ru_maxrss (KiB on Linux) in MB of 10**6 bytes."""
    return kilobytes * 1024 / 1e6


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render(rows: list[Row]) -> str:
    table = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(
            cell.rjust(width) if i in NUMERIC else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(HEADER), rule, *(line(cells) for cells in table[1:])])
