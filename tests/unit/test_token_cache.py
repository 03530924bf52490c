"""The token cache: a hit for at most `ttl` seconds, never past the token's expiry, and a
logout through this process forgets the token at once (even one looked up meanwhile)."""

from datetime import timedelta

from pesan.auth import Caller, TokenCache
from pesan.roles import Role
from pesan.timeutil import utcnow

CALLER = Caller(id="u1", name="Ayu", role=Role.customer, email="ayu@example.com")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_lookup_is_reused_for_at_most_ttl_seconds() -> None:
    clock = Clock()
    cache = TokenCache(ttl=2.0, clock=clock)
    cache.put("t", CALLER, utcnow() + timedelta(days=1), cache.generation)
    assert cache.get("t") == CALLER
    clock.now += 1.9
    assert cache.get("t") == CALLER
    clock.now += 0.2  # a revocation made through another process counts from here on
    assert cache.get("t") is None


def test_never_past_the_tokens_own_expiry() -> None:
    cache = TokenCache(ttl=60.0, clock=Clock())
    cache.put("t", CALLER, utcnow() - timedelta(seconds=1), cache.generation)
    assert cache.get("t") is None


def test_forget_is_at_once_and_beats_a_lookup_that_began_before_it() -> None:
    cache = TokenCache(ttl=60.0, clock=Clock())
    cache.put("t", CALLER, utcnow() + timedelta(days=1), cache.generation)
    began = cache.generation  # a request starts looking "t" up in the database...
    cache.forget("t")  # ...while the same token signs out
    assert cache.get("t") is None
    cache.put("t", CALLER, utcnow() + timedelta(days=1), began)  # ...and then answers
    assert cache.get("t") is None


def test_ttl_zero_turns_it_off_and_size_is_bounded() -> None:
    off = TokenCache(ttl=0, clock=Clock())
    off.put("t", CALLER, utcnow() + timedelta(days=1), off.generation)
    assert off.get("t") is None
    small = TokenCache(ttl=60.0, max_size=2, clock=Clock())
    for token in ("a", "b", "c"):
        small.put(token, CALLER, utcnow() + timedelta(days=1), small.generation)
    assert small.get("a") is None
    assert small.get("c") == CALLER


def test_a_revocation_from_another_process_is_forgotten_here() -> None:
    from pesan.auth import token_digest
    from pesan.live.ws import Hub

    cache = TokenCache(ttl=60.0, clock=Clock())
    cache.put("t", CALLER, utcnow() + timedelta(days=1), cache.generation)
    hub = Hub(broker=None, audience=lambda session, cid: [], forget_tokens=cache.forget_digests)
    hub.revoke([token_digest("t")])  # what the broker hands over from Redis
    assert cache.get("t") is None
