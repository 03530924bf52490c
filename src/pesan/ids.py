"""Time-ordered ids (ULID): sortable, unguessable, and monotonic within this process.

Within one millisecond the random part is incremented rather than redrawn, so ids made
by one process always sort in the order they were made; cursors rely on that.
"""

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def new_id() -> str:
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
            if _last_rand >= 1 << 80:  # exhausted this millisecond: borrow the next one
                ms += 1
                _last_rand = secrets.randbits(79)
        else:
            _last_rand = secrets.randbits(79)  # headroom so increments never overflow in practice
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
