from typing import Annotated

from fastapi import APIRouter, Query

from pesan.admin import service
from pesan.admin.schemas import AdminMessageOut
from pesan.deps import CurrentUser, Db
from pesan.schemas import Limit, Page

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/messages", response_model=Page[AdminMessageOut])
def admin_messages(
    caller: CurrentUser,
    db: Db,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AdminMessageOut]:
    with db.reader() as session:
        items, next_cursor = service.list_messages(session, caller, limit, cursor)
    return Page[AdminMessageOut](items=items, next_cursor=next_cursor)
