"""Reading PostgreSQL's plans in the labeling queue's tests: how many image rows a query touched."""

from __future__ import annotations

import json

from django.db import connection


def image_rows_read(queryset) -> int:
    """Rows of annotation_image that PostgreSQL read (returned or filtered out) to answer `queryset`."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def walk(node: dict) -> int:
        own = 0
        if node.get("Relation Name") == "annotation_image":
            own = node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
        return own + sum(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])
