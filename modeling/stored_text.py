"""Reasons and progress messages recorded in English, shown in the reader's language.

The ML core (modeling/ml, no Django), the paired comparison and the workers write why a number is
missing ("too few patients for intervals: 3 test patients, at least 10 needed") and how far a run
or an evaluation has come ("epoch 3/30, batch 2/8") into stored metrics, cached comparisons, rows
and API answers, where they stay in English like every other stored value. Pages show them through
`translated_reason`: a text that matches one of the templates below is rebuilt from that template's
translation with the same values, recursively for the values (a comparison's reason quotes a
side's), and any other text is looked up whole, then shown as it is. The first matching template
wins, so a longer template comes before a shorter one it extends.
"""

from __future__ import annotations

import re
from functools import cache

from django.utils.translation import gettext, gettext_noop

from modeling.vocabulary import level_word

# Every reason the ML core, modeling/comparisons.py, the gate and the drift watch write, with %(name)s where a value goes.
TEMPLATES = (
    # modeling/ml/estimability.py
    gettext_noop("too few patients for intervals: %(n)s test patients, at least %(minimum)s needed"),
    gettext_noop("too few patients for an interval: %(counts)s, at least %(minimum)s of each needed"),
    gettext_noop("%(positive)s with a positive case and %(negative)s with a negative case"),
    gettext_noop("%(n)s with a positive case"),
    gettext_noop("%(n)s with a negative case"),
    gettext_noop("too few patients for an interval in level(s) %(levels)s of the average"),
    gettext_noop(
        "%(dropped)s of %(resamples)s bootstrap resamples drew no case of a class, more than half, so the rest would "
        "describe only the resamples that did"
    ),
    # modeling/ml/metrics.py
    gettext_noop("the NRS scores of %(n)s images fall outside their level's NRS range%(assumed)s"),
    gettext_noop(
        "NRS %(threshold)s splits level '%(level)s' (%(low)s-%(high)s), so no level probabilities add up to "
        "NRS >= %(threshold2)s"
    ),
    # modeling/comparisons.py
    gettext_noop(
        "The two versions were not evaluated on the same test images: no test snapshot holds a finished evaluation "
        "of both (%(a)s; %(b)s). A paired test needs identical test sets, so no ΔAUROC confidence interval or DeLong "
        "p-value is shown; the per-version intervals below are not a comparison. Evaluate both on the current test "
        "set to pair them."
    ),
    gettext_noop("%(side)s (%(name)s) has no finished evaluation"),
    gettext_noop("%(side)s (%(name)s) on test snapshot %(snapshot)s (%(n)s images)"),
    gettext_noop("Test snapshot %(snapshot)s holds no images of this cohort, so there is nothing to pair."),
    # The gate's verdict reasons (modeling/gate.py); "not above" before "above", which it contains.
    gettext_noop("severe level not estimable: %(reason)s"),
    gettext_noop("not estimable: %(reason)s"),
    gettext_noop("%(level)s AUROC is lower by %(delta)s (p = %(p)s < %(alpha)s)"),
    gettext_noop("the macro-AUROC difference's lower bound %(low)s is not above −%(margin)s"),
    gettext_noop("the macro-AUROC difference's lower bound %(low)s is above −%(margin)s"),
    gettext_noop("macro AUROC higher, interval [%(low)s, %(high)s]"),
    # The drift watch (modeling/drift.py) and the backbone weights (modeling/ml/weights_install.py)
    gettext_noop("only %(n)s assessments with a face in the last %(days)s days (at least %(minimum)s needed)"),
    gettext_noop("%(size)s bytes, expected %(expected)s: not the ImageNet file"),
    # Progress of training runs (modeling/training_runner.py, modeling/ml, modeling/publishing.py)
    gettext_noop("epoch %(epoch)s/%(epochs)s, batch %(batch)s/%(batches)s, loss %(loss)s"),
    gettext_noop("epoch %(epoch)s/%(epochs)s, batch %(batch)s/%(batches)s"),
    gettext_noop("epoch %(epoch)s/%(epochs)s, loss %(loss)s"),
    gettext_noop("epoch %(epoch)s: loss %(loss)s, validation macro AUROC %(auroc)s"),
    gettext_noop("epoch %(epoch)s/%(epochs)s"),
    gettext_noop("training finished, best epoch %(epoch)s"),
    gettext_noop("computing image features: %(n)s new"),
    gettext_noop(
        "finished: %(name)s (WARNING: random-init backbone, no ImageNet weights) (resumed from epoch %(epoch)s)"
    ),
    gettext_noop("finished: %(name)s (WARNING: random-init backbone, no ImageNet weights)"),
    gettext_noop("finished: %(name)s (resumed from epoch %(epoch)s)"),
    gettext_noop("finished: %(name)s"),
    gettext_noop("cancelled (its worker stopped responding; last heartbeat %(when)s)"),
    gettext_noop("worker lost (last heartbeat %(when)s); resuming from the last checkpoint"),
    # Progress of evaluations (modeling/evaluations.py)
    gettext_noop("scored %(done)s of %(total)s test images"),
    gettext_noop("scored %(n)s test images during training"),
    gettext_noop("scored %(n)s test images"),
)
# Reasons without values, looked up whole.
FIXED = (
    gettext_noop("every bootstrap resample gave the same value; a zero-width interval is not a confidence interval"),
    gettext_noop("no test images in this cohort"),
    gettext_noop("no positive cases in the test set"),
    gettext_noop("no negative cases in the test set"),
    gettext_noop("no true case of this level in the test set"),
    gettext_noop("no level has an AUROC"),
    gettext_noop(" (assumed none 0, mild 1-3, moderate 4-6, severe 7-10)"),
    gettext_noop("not evaluated on this cohort"),
    gettext_noop("not evaluated"),
    gettext_noop("level not in this version"),
    gettext_noop("no case of this level in the test set"),
    gettext_noop("At least one of the two evaluations has no predictions for this cohort."),
    gettext_noop("The two versions use different pain levels, so their predictions cannot be paired."),
    gettext_noop("The two evaluations on this snapshot did not score the same images, so no paired test is shown."),
    gettext_noop("the macro-AUROC difference has no confidence interval"),
    gettext_noop("no p-value for the severe level"),
    gettext_noop("there is no production model to compare with"),
    gettext_noop("there is no production model"),
    gettext_noop("the production model has no finished evaluation on a test snapshot"),
    gettext_noop("no weights file"),
    gettext_noop("DeLong test, patient-clustered variance (Obuchowski 1997)"),  # modeling/ml/delong.py
    # Progress messages
    gettext_noop("waiting for a worker"),
    gettext_noop("waiting for a training worker"),
    gettext_noop("waiting for a training worker (sent after the broker came back)"),
    gettext_noop("the task broker is unreachable: request the evaluation again once it is back"),
    gettext_noop(
        "the task broker is unreachable: the run is saved and will be sent to a training worker as soon as the "
        "broker is back"
    ),
    gettext_noop("loading the model"),
    gettext_noop("computing metrics and confidence intervals"),
    gettext_noop("failed"),
    gettext_noop("cancelled before it started"),
    gettext_noop("cancel requested: stopping after the current batch"),
    gettext_noop("cancelled during training"),
    gettext_noop("failed: worker lost too many times"),
    gettext_noop("preparing the data"),
    gettext_noop("evaluating on the locked test patients"),
    gettext_noop("WARNING: no ImageNet weights found, training on a random-init backbone"),
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@cache
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    patterns = []
    for template in TEMPLATES:
        parts = _PLACEHOLDER.split(template)
        # split() alternates literal text and placeholder names: text, name, text, name, ...
        regex = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>.*?)" for index, part in enumerate(parts))
        patterns.append((re.compile(regex, re.DOTALL), template))
    return patterns


def translated_reason(text: str | None) -> str:
    """`text` in the active language where its template is known; else `text` itself."""
    if not text:
        return text or ""
    for pattern, template in _patterns():
        found = pattern.fullmatch(text)
        if found:
            values = {name: _translated_value(name, value) for name, value in found.groupdict().items()}
            return gettext(template) % values
    return gettext(text)


def _translated_value(name: str, value: str) -> str:
    # Level names ("none, moderate") are codes with words of their own; other values may be
    # reasons themselves.
    if name in ("level", "levels"):
        return ", ".join(level_word(part) for part in value.split(", "))
    return translated_reason(value)


def translated_message(text: str | None) -> str:
    """A progress message, which may join several with "; " (a warning stays in front of each)."""
    if not text:
        return text or ""
    whole = translated_reason(text)
    if whole != text or "; " not in text:
        return whole
    return "; ".join(translated_reason(part) for part in text.split("; "))
