from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from pesan.accounts import service
from pesan.accounts.schemas import LoginIn, RegisterIn, TokenOut, UserOut
from pesan.auth import token_digest
from pesan.deps import ClientAddress, CurrentUser, Db, Live, Passwords, Throttler, Token
from pesan.roles import parse_role
from pesan.schemas import problem_responses
from pesan.throttle import Limit

router = APIRouter(tags=["accounts"])


# Sign-in and registration hash passwords (argon2, ~90 ms of CPU) before any transaction,
# on PasswordHashing's low-priority threads: the database's write lock is never held while
# hashing, and a flood of wrong passwords leaves the CPU to everyone else first. Throttling
# (in memory or Redis) is counted on a worker thread, as Redis is a round trip.


@router.post(
    "/auth/register",
    status_code=201,
    response_model=TokenOut,
    responses=problem_responses(429),
)
async def register(
    body: RegisterIn, db: Db, passwords: Passwords, throttle: Throttler, address: ClientAddress
) -> TokenOut:
    await run_in_threadpool(throttle.hit, Limit.register, address)
    password_hash = await passwords.hash(body.password)

    def write() -> TokenOut:
        with db.transaction() as session:
            token, user = service.register(
                session,
                email=body.email,
                password_hash=password_hash,
                name=body.name,
                role=parse_role(body.role),
            )
            return TokenOut(token=token, user=UserOut.model_validate(user, from_attributes=True))

    return await run_in_threadpool(write)


@router.post("/auth/login", response_model=TokenOut, responses=problem_responses(429))
async def login(
    body: LoginIn, db: Db, passwords: Passwords, throttle: Throttler, address: ClientAddress
) -> TokenOut:
    def read() -> service.SignInCandidate | None:
        throttle.hit(Limit.login_address, address)
        throttle.hit(Limit.login_account, service.normalise_email(body.email))
        with db.reader() as session:
            return service.sign_in_candidate(session, body.email)

    candidate = await run_in_threadpool(read)
    ok = await passwords.verify(candidate.password_hash if candidate else None, body.password)
    user_id = service.check_sign_in(candidate, ok).user_id

    def write() -> TokenOut:
        with db.transaction() as session:
            token, user = service.start_session(session, user_id)
            return TokenOut(token=token, user=UserOut.model_validate(user, from_attributes=True))

    return await run_in_threadpool(write)


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(caller: CurrentUser, token: Token, db: Db, live: Live, request: Request) -> Response:
    """Revokes the token, and closes (4401) every socket it opened, on every server process."""
    with db.transaction() as session:
        service.logout(session, token)
    request.app.state.tokens.forget(token)
    if live is not None:
        live.publish_revocation([token_digest(token)])
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(caller: CurrentUser, db: Db) -> UserOut:
    with db.reader() as session:
        return UserOut.model_validate(service.get_user(session, caller.id), from_attributes=True)
