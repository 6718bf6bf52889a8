"""Read the numbers a results page shows, from its data attributes, as a user's script would."""

from __future__ import annotations

from html.parser import HTMLParser


class CellReader(HTMLParser):
    """Collects (panel cohort, row key, column key) -> {value, classes, text} from the page.

    Rows are keyed by data-version (versions table) or data-level (comparison tables); cells by
    data-column, or by their position in the row when they have none.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], dict[str, str]] = {}
        self.hidden_panels: set[str] = set()
        self._panel = ""
        self._row = ""
        self._position = 0
        self._current: dict[str, str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "data-cohort-panel" in found:
            self._panel = found["data-cohort-panel"]
            if "hidden" in found:
                self.hidden_panels.add(self._panel)
        if tag == "tr":
            self._row = found.get("data-version") or found.get("data-level") or ""
            self._position = 0
        if tag in ("td", "th") and self._row:
            column = found.get("data-column") or str(self._position)
            self._position += 1
            self._current = {"value": found.get("data-value", ""), "classes": found.get("class", ""), "text": ""}
            self.cells[(self._panel, self._row, column)] = self._current

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current["text"] += data


def read_cells(html: str) -> CellReader:
    reader = CellReader()
    reader.feed(html)
    return reader
