from fastapi import APIRouter, Request, Response

from pesan.accounts import service
from pesan.accounts.schemas import LoginIn, RegisterIn, TokenOut, UserOut
from pesan.deps import CurrentUser, Db, Token
from pesan.roles import parse_role

router = APIRouter(tags=["accounts"])


@router.post("/auth/register", status_code=201, response_model=TokenOut)
def register(body: RegisterIn, db: Db) -> TokenOut:
    with db.transaction() as session:
        token, user = service.register(
            session,
            email=body.email,
            password=body.password,
            name=body.name,
            role=parse_role(body.role),
        )
        return TokenOut(token=token, user=UserOut.model_validate(user, from_attributes=True))


@router.post("/auth/login", response_model=TokenOut)
def login(body: LoginIn, db: Db) -> TokenOut:
    with db.transaction() as session:
        token, user = service.login(session, email=body.email, password=body.password)
        return TokenOut(token=token, user=UserOut.model_validate(user, from_attributes=True))


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(caller: CurrentUser, token: Token, db: Db, request: Request) -> Response:
    with db.transaction() as session:
        service.logout(session, token)
    request.app.state.tokens.forget(token)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(caller: CurrentUser, db: Db) -> UserOut:
    with db.reader() as session:
        return UserOut.model_validate(service.get_user(session, caller.id), from_attributes=True)
