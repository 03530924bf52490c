"""The pooled randomness behind ids and request ids: never the same bytes twice, in this
process or in a forked child, and as wide as asked."""

import os

from pesan import ids


def test_pooled_bytes_never_repeat_and_cross_refills() -> None:
    seen = [ids.random_bytes(10) for _ in range(2000)]  # ~5 refills of the pool
    assert all(len(chunk) == 10 for chunk in seen)
    assert len(set(seen)) == len(seen)
    assert len(ids.random_bytes(ids._POOL_BYTES + 1)) == ids._POOL_BYTES + 1


def test_random_bits_stay_within_their_width() -> None:
    values = [ids._random_bits(79) for _ in range(500)]
    assert all(0 <= v < 1 << 79 for v in values)
    assert max(values) >= 1 << 75  # drawn from the whole width, not a narrow part of it


def test_a_forked_child_draws_other_bytes_than_its_parent() -> None:
    ids.random_bytes(1)  # the pool holds bytes the child would inherit
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        os.close(read)
        os.write(write, ids.random_bytes(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != ids.random_bytes(16)
