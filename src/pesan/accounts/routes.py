from fastapi import APIRouter, Response

from pesan.accounts import service
from pesan.accounts.schemas import LoginIn, RegisterIn, TokenOut, UserOut
from pesan.auth import token_digest
from pesan.deps import ClientAddress, CurrentUser, Db, Live, Throttler, Token
from pesan.roles import parse_role
from pesan.schemas import problem_responses
from pesan.throttle import Limit

router = APIRouter(tags=["accounts"])


@router.post(
    "/auth/register",
    status_code=201,
    response_model=TokenOut,
    responses=problem_responses(429),
)
def register(body: RegisterIn, db: Db, throttle: Throttler, address: ClientAddress) -> TokenOut:
    throttle.hit(Limit.register, address)
    with db.transaction() as session:
        token, user = service.register(
            session,
            email=body.email,
            password=body.password,
            name=body.name,
            role=parse_role(body.role),
        )
        return TokenOut(token=token, user=UserOut.model_validate(user, from_attributes=True))


@router.post("/auth/login", response_model=TokenOut, responses=problem_responses(429))
def login(body: LoginIn, db: Db, throttle: Throttler, address: ClientAddress) -> TokenOut:
    throttle.hit(Limit.login_address, address)
    throttle.hit(Limit.login_account, service.normalise_email(body.email))
    with db.transaction() as session:
        token, user = service.login(session, email=body.email, password=body.password)
        return TokenOut(token=token, user=UserOut.model_validate(user, from_attributes=True))


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(caller: CurrentUser, token: Token, db: Db, live: Live) -> Response:
    """Revokes the token, and closes (4401) every socket it opened, on every server process."""
    with db.transaction() as session:
        service.logout(session, token)
    if live is not None:
        live.publish_revocation([token_digest(token)])
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(caller: CurrentUser, db: Db) -> UserOut:
    with db.reader() as session:
        return UserOut.model_validate(service.get_user(session, caller.id), from_attributes=True)
