"""Time-ordered ids (ULID): sortable, unguessable, and monotonic within this process.

Within one millisecond the random part is incremented rather than redrawn, so ids made
by one process always sort in the order they were made; cursors rely on that.
"""

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0

# The operating system's randomness, fetched 4 KiB at a time: a request makes several ids and
# a request id, and each `os.urandom` is a system call that also lets go of the interpreter
# lock (another thread then holds the event loop up). Refilled in a forked child, so two
# processes never hand out the same bytes.
_POOL_BYTES = 4096
_pool = b""
_pool_at = 0


def random_bytes(count: int) -> bytes:
    """`count` bytes from the OS's cryptographic randomness (as `os.urandom`), pooled."""
    with _lock:
        return _take(count)


def _take(count: int) -> bytes:
    global _pool, _pool_at
    if _pool_at + count > len(_pool):
        _pool, _pool_at = os.urandom(max(_POOL_BYTES, count)), 0
    chunk = _pool[_pool_at : _pool_at + count]
    _pool_at += count
    return chunk


def _forget_pool() -> None:
    global _pool, _pool_at
    _pool, _pool_at = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def _random_bits(bits: int) -> int:
    return int.from_bytes(_take((bits + 7) // 8)) >> (-bits % 8)


def new_id() -> str:
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
            if _last_rand >= 1 << 80:  # exhausted this millisecond: borrow the next one
                ms += 1
                _last_rand = _random_bits(79)
        else:
            _last_rand = _random_bits(79)  # headroom so increments never overflow in practice
        _last_ms = ms
        value = (ms << 80) | _last_rand
    return _encode(value)


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_valid(value: str) -> bool:
    return len(value) == 26 and all(c in _ALPHABET for c in value)
