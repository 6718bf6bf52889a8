"""The words people read for the codes PainSite stores: pain levels, stages, cohorts, modes.

The codes stay as they are in the database, the API, the exports and data attributes; pages and
plots show these words in the reader's language. A level configured in PAINSITE_PAIN_LEVELS that
is not one of the default four is shown by its configured name.
"""

from __future__ import annotations

from django.utils.translation import pgettext_lazy

LEVEL_WORDS = {
    "none": pgettext_lazy("pain level", "none"),
    "mild": pgettext_lazy("pain level", "mild"),
    "moderate": pgettext_lazy("pain level", "moderate"),
    "severe": pgettext_lazy("pain level", "severe"),
    # The average over levels in the results tables.
    "macro": pgettext_lazy("average over pain levels", "macro"),
}
STAGE_WORDS = {
    "candidate": pgettext_lazy("model stage", "candidate"),
    "production": pgettext_lazy("model stage", "production"),
    "archived": pgettext_lazy("model stage", "archived"),
}
COHORT_WORDS = {
    "clinical": pgettext_lazy("cohort", "clinical"),
    "simulated": pgettext_lazy("cohort", "simulated"),
    "combined": pgettext_lazy("cohort", "combined"),
}
STATUS_WORDS = {
    "queued": pgettext_lazy("run status", "queued"),
    "running": pgettext_lazy("run status", "running"),
    "succeeded": pgettext_lazy("run status", "succeeded"),
    "failed": pgettext_lazy("run status", "failed"),
    "cancelled": pgettext_lazy("run status", "cancelled"),
}
SPLIT_WORDS = {
    "train": pgettext_lazy("patient split", "train"),
    "val": pgettext_lazy("patient split", "validation"),
    "test": pgettext_lazy("patient split", "test"),
}
MODE_WORDS = {
    "head": pgettext_lazy("training mode", "head only"),
    "finetune": pgettext_lazy("training mode", "fine-tune"),
}
TARGET_SOURCE_WORDS = {
    "self_report": pgettext_lazy("training target source", "self-report"),
    "observer_median": pgettext_lazy("training target source", "observer median"),
    "unknown": pgettext_lazy("training target source", "unrecorded"),
}


def level_word(name: str) -> str:
    return str(LEVEL_WORDS.get(name, name))


def stage_word(stage: str) -> str:
    return str(STAGE_WORDS.get(stage, stage))


def cohort_word(cohort: str) -> str:
    return str(COHORT_WORDS.get(cohort, cohort))


def cohorts_words(cohorts: list[str] | tuple[str, ...]) -> str:
    """ "clinical + simulated", as the run and version lists name what was trained on."""
    return " + ".join(cohort_word(cohort) for cohort in cohorts)


def status_word(status: str) -> str:
    return str(STATUS_WORDS.get(status, status))


def split_word(split: str) -> str:
    return str(SPLIT_WORDS.get(split, split))


def mode_word(mode: str) -> str:
    return str(MODE_WORDS.get(mode, mode))


def target_source_word(source: str) -> str:
    return str(TARGET_SOURCE_WORDS.get(source, source))
