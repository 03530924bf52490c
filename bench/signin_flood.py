"""Sends while a flood of wrong-password sign-ins hits the same server process.

Five users send messages (one connection each) for a while alone, then while ten
connections sign in with a wrong password as fast as they can, in alternating rounds; the
figure is the send rate during the flood divided by the rate without it. Hashing a password
(argon2, ~90 ms of CPU) must neither hold the database's write lock nor starve other work.
Throttling sign-ins is a separate matter (it would only make the flood cheaper).

    .venv/bin/python bench/signin_flood.py [--seconds 8] [--smoke]

Writes bench/results/signin_flood.json. Target: ratio >= 0.8. Fails (exit 1) on any 5xx,
or any answer to a send other than 201 or to the flood other than 401/429; never on timing.
"""

import argparse
import threading
from typing import Any

from harness import (
    Api,
    Load,
    Target,
    alternate,
    combine,
    fail,
    start_pesan,
    workdir,
    write_results,
    wrk,
)
from send import CAPTURE, check_stored, errors_of, setup_conversations

SENDERS = 5
FLOODERS = 10


def flood_targets(api: Api) -> list[Target]:
    victim = api.register("customer")
    return [
        Target(
            path="/api/v1/auth/login",
            headers={"Content-Type": "application/json"},
            pre=f'{{"email":"{victim["email"]}","password":"wrong-',
            post='"}',
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--smoke", action="store_true", help="short; fails on errors only")
    args = parser.parse_args()
    seconds = 1.0 if args.smoke else args.seconds
    rounds = 1 if args.smoke else max(1, round(seconds / 2))
    step = seconds / rounds
    problems: list[str] = []
    floods: list[Load] = []
    with workdir() as tmp:
        server = start_pesan(tmp, cheap_passwords=False)
        try:
            api = Api(server.base)
            senders = setup_conversations(server, SENDERS)
            flooding = flood_targets(api)
            wrk(server.base, senders, connections=SENDERS, seconds=1, capture=CAPTURE)

            def sends() -> Load:
                return wrk(server.base, senders, connections=SENDERS, seconds=step, capture=CAPTURE)

            def sends_in_flood() -> Load:
                # The flood starts first and outlasts the sends by a second at each end.
                flood_done: list[Load] = []
                flooder = threading.Thread(
                    target=lambda: flood_done.append(
                        wrk(server.base, flooding, connections=FLOODERS, seconds=step + 2)
                    )
                )
                flooder.start()
                threading.Event().wait(1.0)
                measured = sends()
                flooder.join()
                floods.extend(flood_done)
                return measured

            both = alternate({"alone": sends, "flood": sends_in_flood}, rounds)
        finally:
            server.stop()
        url = f"sqlite:///{tmp / 'data' / 'pesan.sqlite3'}"
        acked = both["alone"].acked + both["flood"].acked
        problems += check_stored(url, acked)
    flood = combine(floods)
    problems += errors_of("sends alone", both["alone"]) + errors_of("sends in flood", both["flood"])
    problems += [
        f"flood: {n} answers were {c}" for c, n in flood.codes.items() if c not in (401, 429)
    ]
    alone, during = both["alone"], both["flood"]
    result: dict[str, Any] = {
        "smoke": args.smoke,
        "senders": SENDERS,
        "flooders": FLOODERS,
        "sends_alone": alone.summary(),
        "sends_in_flood": during.summary(),
        "flood": {**flood.summary(), "rate": round(flood.requests / flood.seconds, 1)},
        "ratio": round(during.rate / alone.rate, 3) if alone.rate else None,
        "target_ratio_at_least": 0.8,
    }
    write_results("signin_flood" + ("-smoke" if args.smoke else ""), result)
    fail(problems)


if __name__ == "__main__":
    main()
