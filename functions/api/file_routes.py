"""Routes linking files and cards, and rejects as a download (README "Operations"; SPEC §9b):

- GET /files/{file_id}/cards: each card the file changed (status before -> after) and, for a
  voided file, what the void did;
- GET /files/{file_id}/void_preview: what voiding the file would do (read-only);
- GET /files/{file_id}/rejects.csv: every rejected row as CSV (line, card id, reason, raw row
  with only the phone cells masked).

Same IAM auth, error model and OpenAPI document as the other routes; each calls one
`cardstatus.filecards` function. `register(app, connection, requests)` (app.py) binds them.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from cardstatus import filecards
from functions.api.observability import RequestLog
from functions.api.ops_schemas import (
    ActionQuery,
    CursorQuery,
    FileCardListOut,
    FileIdPath,
    LimitQuery,
    VoidPreviewOut,
)
from functions.api.schemas import FILE_ERRORS

router = APIGatewayRouter()


class _Bound:
    connection: Callable[[], Any]
    requests: RequestLog


_bound = _Bound()


def register(
    app: APIGatewayRestResolver, connection: Callable[[], Any], requests: RequestLog
) -> None:
    """Add GET /files/{file_id}/cards, /void_preview and /rejects.csv to app."""
    _bound.connection, _bound.requests = connection, requests
    app.include_router(router)


@router.get(
    "/files/<file_id>/cards",
    summary="The cards a file changed (before -> after) and what its void did",
    description=(
        "One row per card whose current status the file changed (action apply) and, once the "
        "file is voided, per card whose status the void changed (action void; status_after "
        "null: the card was deleted), with each card's status now. Paged: see next_cursor."
    ),
    operation_id="listFileCards",
    tags=["ops"],
    responses={200: {"description": "One page of cards"}, **FILE_ERRORS},
)
def list_file_cards(
    file_id: FileIdPath,
    action: ActionQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = None,
) -> FileCardListOut:
    body = filecards.file_cards(_bound.connection(), file_id, action, cursor, limit)
    _bound.requests.record("found", file_id=file_id, count=len(body["cards"]))
    return body  # type: ignore[return-value]  # validated and serialised by Powertools


@router.get(
    "/files/<file_id>/void_preview",
    summary="What voiding a file would do, before it is done",
    description=(
        "The cards whose current status a void of this file would change (status now -> "
        "after; null after: the card would be deleted) and how many, computed from the events "
        "other files also carried. Changes nothing. Paged: a page may be short (even empty) "
        "while next_cursor is set."
    ),
    operation_id="previewFileVoid",
    tags=["ops"],
    responses={200: {"description": "The preview"}, **FILE_ERRORS},
)
def preview_file_void(
    file_id: FileIdPath, cursor: CursorQuery = None, limit: LimitQuery = None
) -> VoidPreviewOut:
    body = filecards.void_preview(_bound.connection(), file_id, cursor, limit)
    _bound.requests.record("found", file_id=file_id, count=len(body["cards"]))
    return body  # type: ignore[return-value]


@router.get(
    "/files/<file_id>/rejects.csv",
    summary="A file's rejected rows as CSV (line, card_id, reason, raw_row)",
    description=(
        "Every rejected row in line order, at most "
        f"{filecards.REJECTS_CSV_MAX_ROWS:,} (header X-Truncated: true when there were more; "
        "`cardstatus rejects ID --csv` has no limit). raw_row is the row as the partner sent "
        "it with only the phone cells masked."
    ),
    operation_id="downloadFileRejects",
    tags=["ops"],
    responses={
        200: {
            "description": "CSV with a header row",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **FILE_ERRORS,
    },
)
def download_file_rejects(file_id: FileIdPath) -> Response[str]:
    lines, truncated = filecards.rejects_csv_lines(_bound.connection(), file_id)
    body = "".join(lines)
    _bound.requests.record("found", file_id=file_id)
    return Response(
        status_code=200,
        content_type="text/csv; charset=utf-8",
        body=body,
        headers={
            "Content-Disposition": f'attachment; filename="file-{file_id}-rejects.csv"',
            "X-Truncated": "true" if truncated[0] else "false",
        },
    )
