"""Finders of user-facing English that is not marked for translation, used by test_translations.py.

Three readers, each a heuristic with a short allowlist, and each tested on a bad sample of its own:
- `untranslated_template_text`: a template's text nodes and visible attributes outside
  {% translate %} / {% blocktranslate %};
- `untranslated_script_strings`: string literals in a script that read as prose and are not the
  argument of gettext(), ngettext() or pgettext();
- `english_words`: English words left in a page rendered in Chinese.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Names, abbreviations and units that stay as they are in every language (docs/deploy.md).
ALLOWED_WORDS = {
    # the product, the study's abbreviations and the metrics' own names
    "PainSite",
    "AUROC",
    "ΔAUROC",
    "F1",
    "ΔF1",
    "NRS",
    "ICC",
    "ECE",
    "CI",
    "ROC",
    "DeLong",
    "Obuchowski",
    "Brier",
    "PSI",  # the population stability index of the drift watch
    "CPD",
    "SPD",
    "CD",
    "CPD-train",
    "SPD-train",
    "CD-train",
    "CPD-test",
    "SPD-test",
    "CD-test",
    "VGG16",
    "ImageNet",
    # formats, protocols and identifiers
    "API",
    "OpenAPI",
    "JSON",
    "CSV",
    "Markdown",
    "LaTeX",
    "ZIP",
    "zip",
    "SHA-256",
    "sha256",
    "UTC",
    "ID",
    "EXIF",
    "GPS",
    "JPEG",
    "PNG",
    "WebP",
    "TIFF",
    "BMP",
    "GIF",
    "MB",
    "px",
    "GET",
    "HTTPS",
    "URL",
    "ETA",
    "GPU",
    "CPU",
    "lr",
    # keys named on the labeling page
    "Ctrl",
    "Enter",
    "Esc",
    # names of statistics and of tools, as the literature writes them
    "kappa",
    "Kappa",
    "JavaScript",
}
# Attributes a person reads or hears (screen readers); `value` only on buttons.
VISIBLE_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "summary"}
WORD = re.compile(r"[A-Za-zΔ][A-Za-z0-9Δ_'’./-]*[A-Za-z0-9]|[A-Za-z]{2,}")


def _prose_words(text: str) -> list[str]:
    """The words of `text` that need a translation: two letters or more, not allowlisted, not a
    number, code, path or file name."""
    found = []
    for word in WORD.findall(text):
        bare = word.strip(".'’-")
        if bare in ALLOWED_WORDS or len(re.sub(r"[^A-Za-z]", "", bare)) < 2:
            continue
        # Codes and file names: manifest.csv, user.role_change, docs/ml.md, v12, P-007, 1e-6.
        if re.search(r"[._/]\w|\d", bare):
            continue
        found.append(bare)
    return found


# ---------------------------------------------------------------------------------------------
# Templates

_COMMENT = re.compile(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.DOTALL)
_BLOCK_TRANSLATE = re.compile(r"{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}", re.DOTALL)
_TAG = re.compile(r"{%.*?%}", re.DOTALL)
_VARIABLE = re.compile(r"{{.*?}}", re.DOTALL)
# Contents that are not words to translate: scripts and styles, keys (<kbd>X</kbd>) and code
# (<code>manifest.csv</code>).
_NOT_TEXT = re.compile(r"<(script|style|kbd|code)\b[^>]*>.*?</\1>", re.DOTALL | re.IGNORECASE)


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attributes.items():
            if value and name in VISIBLE_ATTRIBUTES:
                self.texts.append((f"{name}=", value))
        if tag == "button" or (tag == "input" and attributes.get("type") in ("submit", "button", "reset")):
            if attributes.get("value"):
                self.texts.append(("value=", attributes["value"]))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(("", data.strip()))


def untranslated_template_text(source: str) -> list[str]:
    """Text a person would read in this template that is not inside a translation tag."""
    text = _COMMENT.sub(" ", source)
    text = _BLOCK_TRANSLATE.sub(" ", text)
    # {% translate %} and every other tag, and variables, leave nothing to read here; a tag inside
    # an attribute is replaced by a placeholder word so the attribute stays well formed.
    text = _TAG.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    text = _NOT_TEXT.sub(" ", text)
    reader = _VisibleText()
    reader.feed(text)
    return [where + repr(piece) for where, piece in reader.texts if _prose_words(piece)]


# ---------------------------------------------------------------------------------------------
# Scripts

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`(?:[^`\\]|\\.)*`', re.DOTALL)
_LINE_COMMENT = re.compile(r"(^|[^:\\])//[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_TRANSLATED_CALL = re.compile(
    r"\b(?:gettext|ngettext|pgettext|npgettext|gettext_noop)\(\s*(?:"
    + _STRING.pattern
    + r")(?:\s*,\s*(?:"
    + _STRING.pattern
    + r"))*",
    re.DOTALL,
)
# Strings that are names the code compares, not words shown: key names, element names.
ALLOWED_SCRIPT_STRINGS = {
    "use strict",
    "Accept",
    "Enter",
    "Escape",
    "Backspace",
    "ArrowRight",
    "INPUT",
    "TEXTAREA",
    "SELECT",
}


def _looks_like_prose(literal: str) -> bool:
    """Two plain words in a row ("face found", "Not saved: ..."), or one capitalised word on its
    own ("Error", "Pause"). A single lowercase word is taken for a code (a status, a class name,
    an element), which is what nearly all of them are: such words shown to people are few and are
    marked by hand."""
    body = re.sub(r"\$\{[^}]*\}", " ", literal[1:-1]).strip()
    if body in ALLOWED_SCRIPT_STRINGS or not _prose_words(body):
        return False
    if re.search(r"[\[\]#{}=]|^[.#]|\w\(|\b(?:sans|serif|monospace)\b", body):
        return False  # CSS selectors, SVG transforms, font lists
    plain_words = [word for word in re.split(r"[\s,;:()]+", body) if re.fullmatch(r"[A-Za-z]{2,}[.…!?]?", word)]
    if len(plain_words) >= 2:
        return True
    return bool(re.fullmatch(r"[A-Z][a-z]+[.…!?]?", body))


def untranslated_script_strings(source: str) -> list[str]:
    """String literals of a script that read as English prose and are not gettext's argument."""
    text = _BLOCK_COMMENT.sub(" ", source)
    text = _LINE_COMMENT.sub(r"\1", text)
    text = _TRANSLATED_CALL.sub("gettext()", text)
    return [literal for literal in (match.group(0) for match in _STRING.finditer(text)) if _looks_like_prose(literal)]


# ---------------------------------------------------------------------------------------------
# Rendered pages


class _PageText(HTMLParser):
    """The text of a rendered page a person reads: no scripts or styles, no <code>/<kbd>, and
    nothing marked data (the data-untranslated attribute is not used; values are passed in)."""

    SKIPPED = {"script", "style", "code", "kbd", "pre", "datalist"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping.append(tag)
            return
        if self.skipping:
            return
        attributes = dict(attrs)
        for name, value in attributes.items():
            if value and name in VISIBLE_ATTRIBUTES:
                self.texts.append(value)
        if tag == "option" and attributes.get("lang"):
            # The language selector names each language in itself ("English").
            self.skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


def english_words(html: str, *, data_values: set[str] = frozenset()) -> list[str]:
    """English words in a rendered page, leaving out `data_values` (usernames, patient codes,
    version names: values people typed, shown as they are)."""
    reader = _PageText()
    reader.feed(html)
    words = []
    for text in reader.texts:
        for value in sorted(data_values, key=len, reverse=True):
            text = text.replace(value, " ")
        words += _prose_words(text)
    return words
