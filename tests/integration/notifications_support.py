"""Reading the notifications outbox in tests, each payload checked against its type's JSON
Schema (ingestion/notifications/schemas/<type>.v1.json) as it is read."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from tests.conftest import query

SCHEMAS = Path(__file__).resolve().parents[2] / "ingestion" / "notifications" / "schemas"


@cache
def validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type}.v1.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def notifications(url: str) -> list[dict[str, Any]]:
    """Every notification's payload, oldest first, each valid against its schema (or the test
    fails naming the first problem); the row's columns agree with the payload."""
    rows = query(
        url,
        "SELECT notification_id, event_type, schema_version, payload FROM billing.notifications"
        " ORDER BY recorded_at, dedup_key",
    )
    documents = []
    for ident, event_type, version, payload in rows:
        document = json.loads(payload)
        validator(event_type).validate(document)
        assert (document["id"], document["type"], document["version"]) == (
            ident, event_type, version)  # fmt: skip
        documents.append(document)
    return documents


def of_type(documents: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    """The `data` of the documents of one type."""
    return [d["data"] for d in documents if d["type"] == event_type]
