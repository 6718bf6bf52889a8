"""The permission table helper refuses tables that would let someone in by omission."""

from __future__ import annotations

import pytest

from painsite.core.api import permission_classes_for
from painsite.core.permissions import page_permissions


def test_a_method_listed_without_a_permission_is_an_error_when_the_view_is_defined():
    with pytest.raises(ValueError, match="GET lists no permission"):
        permission_classes_for(GET=[])
    with pytest.raises(ValueError, match="POST lists no permission"):
        page_permissions(POST=())


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_head_and_options_follow_from_the_table_and_are_not_listed(method):
    with pytest.raises(ValueError, match="follows from the other methods"):
        permission_classes_for(**{method: ["annotation.view_image"]})
