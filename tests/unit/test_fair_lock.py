"""SQLite's writers queue in the process, first come first served, with a timeout."""

import threading
import time

from pesan.db import FairLock


def test_waiters_get_the_lock_in_the_order_they_asked() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    order: list[int] = []
    threads = []
    for n in range(8):
        thread = threading.Thread(
            target=lambda n=n: (lock.acquire(5), order.append(n), lock.release())
        )
        thread.start()
        threads.append(thread)
        time.sleep(0.02)  # let it queue before the next one asks
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(8))


def test_a_waiter_gives_up_after_its_timeout_and_the_lock_still_works() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    other: list[bool] = []
    waiter = threading.Thread(target=lambda: other.append(lock.acquire(timeout=0.05)))
    waiter.start()
    waiter.join(5)
    assert other == [False]
    lock.release()
    assert lock.acquire(timeout=0.05)
    lock.release()


def test_the_holder_may_take_it_again() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    assert lock.acquire(timeout=0.05)  # a transaction opened inside another's callback
    lock.release()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
    waiter.start()
    waiter.join(5)
    assert got == [False]  # still held once
    lock.release()
    assert lock.acquire(timeout=0.05)
