"""What every HTTP benchmark shares: real server processes, wrk with a Lua script, results.

- `start_pesan(...)` runs a real `pesan serve` subprocess on a free 127.0.0.1 port (fresh
  embedded database, or a PostgreSQL URL) and waits for `/readyz`.
- `start_baseline()` runs `bench/baseline_app.py`: a bare FastAPI POST with a pydantic body,
  served by uvicorn the way `pesan serve` serves pesan. Ratios divide by its figures, taken in
  the same run, because this machine is shared and noisy.
- `wrk(...)` loads a server with a generated Lua script and answers what it counted: requests
  by status, latency percentiles, and (optionally) the ids the server acknowledged, so that a
  benchmark can check that each acknowledged write is stored exactly once.

Every process is started here and stopped here, by its own pid; every load run is bounded in
time by wrk's `--duration`.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PG_ADMIN_URL = os.environ.get("PESAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PESAN_TEST_REDIS", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


def _wait(proc: Proc, probe: str, deadline: float = 60.0) -> Proc:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if proc.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{proc.tail()}")
        try:
            if httpx.get(proc.base + probe, timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"server not ready in time:\n{proc.tail()}")


def pesan_env(**extra: str) -> dict[str, str]:
    """The environment of a pesan process: PESAN_* only from `extra`, so settings of the shell
    running the benchmark do not leak in. PESAN_BENCH_SRC=<a checkout's src> runs that
    checkout's pesan instead (to measure "before" with the same benchmark)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PESAN_")}
    if os.environ.get("PESAN_BENCH_SRC"):
        env["PYTHONPATH"] = os.environ["PESAN_BENCH_SRC"]
    env.update(extra)
    return env


# Registering the benchmark's users would take a second each at the default argon2 cost on a
# busy machine; only the sign-in benchmark needs real hashing, so only it keeps the default.
CHEAP_PASSWORDS = {"PESAN_ARGON2_TIME_COST": "1", "PESAN_ARGON2_MEMORY_KIB": "64"}


def start_pesan(
    workdir: Path,
    *,
    database_url: str | None = None,
    workers: int = 1,
    cheap_passwords: bool = True,
    **env: str,
) -> Proc:
    """`pesan serve` with default settings (plus `env`), its log in `workdir`."""
    port = free_port()
    # Throttling (per user and address) would answer most of a load test with 429: the
    # benchmarks measure what the server can do, so it is off (a setting, not a code path).
    extra = {"PESAN_DATA_DIR": str(workdir / "data"), "PESAN_LIMITS_ENABLED": "false", **env}
    if cheap_passwords:
        extra.update(CHEAP_PASSWORDS)
    if database_url:
        extra["PESAN_DATABASE_URL"] = database_url
    log = workdir / f"pesan-{port}.log"
    cmd = [sys.executable, "-m", "pesan", "serve", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    process = subprocess.Popen(
        cmd, env=pesan_env(**extra), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    return _wait(Proc(process, port, log), "/readyz")


def pesan_upgrade(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pesan", "db", "upgrade"],
        env=pesan_env(PESAN_DATABASE_URL=database_url),
        check=True,
        capture_output=True,
    )


def start_baseline(workdir: Path) -> Proc:
    port = free_port()
    log = workdir / f"baseline-{port}.log"
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "baseline_app.py"), str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return _wait(Proc(process, port, log), "/docs")


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pesan-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    import psycopg

    name = f"pesan_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- load --------------------------------------------------------------------------------------


@dataclass
class Target:
    """One kind of request: `pre + <unique id> + post` is the body."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)
    pre: str = ""
    post: str = ""
    method: str = "POST"


def _lua_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string for our ASCII content


def _lua_target(t: Target) -> str:
    headers = ",".join(f"[{_lua_str(k)}]={_lua_str(v)}" for k, v in t.headers.items())
    fields = [f"p={_lua_str(t.path)}", f"m={_lua_str(t.method)}"]
    fields += [f"pre={_lua_str(t.pre)}", f"post={_lua_str(t.post)}", f"h={{{headers}}}"]
    return "{" + ",".join(fields) + "}"


LUA = r"""
local targets = {%(targets)s}
run = %(run)s
local capture = %(capture)s
local key_header = %(key_header)s
local delay_ms = %(delay_ms)s
nthreads = %(threads)d
local threads = {}
n = 0
codes = {}
acked = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(os.time() + tid)
end

function request()
  n = n + 1
  local i = ((n - 1) * nthreads + (tid - 1)) %% #targets + 1
  local t = targets[i]
  local uid = run .. tid .. "-" .. n
  local headers = {}
  for k, v in pairs(t.h) do headers[k] = v end
  if key_header ~= "" then headers[key_header] = uid end
  local body = nil
  if t.m ~= "GET" then body = t.pre .. uid .. t.post end
  return wrk.format(t.m, t.p, headers, body)
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if capture ~= "" and status >= 200 and status < 300 then
    local c = string.match(body, capture)
    if c then acked[#acked + 1] = c end
  end
end

if delay_ms > 0 then
  -- random around the mean, so that the connections do not send in step (bursts)
  function delay() return math.floor(delay_ms * (0.5 + math.random())) end
end

local function jstr(s) return '"' .. tostring(s) .. '"' end

function done(summary, latency, requests)
  local all = {}
  local ids = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
    for _, v in ipairs(t:get("acked")) do ids[#ids + 1] = v end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = jstr(k) .. ":" .. v end
  local e = summary.errors
  io.write("RESULT {" ..
    '"duration_us":' .. summary.duration ..
    ',"requests":' .. summary.requests ..
    ',"codes":{' .. table.concat(parts, ",") .. "}" ..
    ',"socket_errors":' .. (e.connect + e.read + e.write + e.timeout) ..
    ',"timeouts":' .. e.timeout ..
    ',"p50_ms":' .. latency:percentile(50) / 1000 ..
    ',"p90_ms":' .. latency:percentile(90) / 1000 ..
    ',"p99_ms":' .. latency:percentile(99) / 1000 ..
    ',"max_ms":' .. latency.max / 1000 ..
    "}\n")
  if %(acked_file)s ~= "" then
    local f = io.open(%(acked_file)s, "w")
    for _, v in ipairs(ids) do f:write(v, "\n") end
    f:close()
  end
end
"""


@dataclass
class Load:
    seconds: float
    requests: int
    codes: dict[int, int]
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    acked: list[str]

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.codes.items() if 200 <= code < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.codes.items() if code >= 500)

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "rate": round(self.rate, 1),
            "ok": self.ok,
            "codes": {str(k): v for k, v in sorted(self.codes.items())},
            "socket_errors": self.socket_errors,
            "p50_ms": round(self.p50_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
        }


def combine(loads: list[Load]) -> Load:
    """Several runs as one: counts add up; each latency figure is the worst run's."""
    codes: dict[int, int] = {}
    for load in loads:
        for code, n in load.codes.items():
            codes[code] = codes.get(code, 0) + n
    return Load(
        seconds=sum(x.seconds for x in loads),
        requests=sum(x.requests for x in loads),
        codes=codes,
        socket_errors=sum(x.socket_errors for x in loads),
        p50_ms=max(x.p50_ms for x in loads),
        p90_ms=max(x.p90_ms for x in loads),
        p99_ms=max(x.p99_ms for x in loads),
        max_ms=max(x.max_ms for x in loads),
        acked=[a for x in loads for a in x.acked],
    )


def alternate(runs: dict[str, Callable[[], Load]], rounds: int) -> dict[str, Load]:
    """Run each load in turn, `rounds` times over, so that every figure sees the same
    machine: on a shared machine the load of others changes from minute to minute."""
    done: dict[str, list[Load]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            done[name].append(run())
    return {name: combine(loads) for name, loads in done.items()}


def wrk(
    base: str,
    targets: list[Target],
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    capture: str = "",
    key_header: str = "",
    delay_ms: float = 0,
    timeout_s: int = 10,
    extra_lua: str = "",
) -> Load:
    """Load `base` for `seconds` with `connections` connections, cycling through `targets`.

    `capture` is a Lua pattern whose first capture, taken from each 2xx body, is returned
    in `acked`. `key_header`, if set, carries the request's unique id (an Idempotency-Key).
    `delay_ms` paces each connection (for a rate below the peak). `extra_lua` is appended
    to the script: a benchmark may define its own `request()` there (globals `n`, `tid`,
    `run`, `nthreads` are there to use).
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    threads = max(1, min(threads, connections))
    run = f"r{uuid.uuid4().hex[:6]}-"
    with tempfile.TemporaryDirectory() as tmp:
        acked_file = str(Path(tmp) / "acked.txt") if capture else ""
        lua_targets = ",".join(_lua_target(t) for t in targets)
        script = Path(tmp) / "load.lua"
        script.write_text(
            LUA
            % {
                "targets": lua_targets,
                "run": _lua_str(run),
                "capture": _lua_str(capture),
                "key_header": _lua_str(key_header),
                "delay_ms": int(delay_ms),
                "threads": threads,
                "acked_file": _lua_str(acked_file),
            }
            + extra_lua
        )
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script),
            base,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
        data = json.loads(line[len("RESULT ") :])
        acked = Path(acked_file).read_text().split() if acked_file else []
    return Load(
        seconds=data["duration_us"] / 1e6,
        requests=int(data["requests"]),
        codes={int(k): int(v) for k, v in data["codes"].items()},
        socket_errors=int(data["socket_errors"]),
        p50_ms=float(data["p50_ms"]),
        p90_ms=float(data["p90_ms"]),
        p99_ms=float(data["p99_ms"]),
        max_ms=float(data["max_ms"]),
        acked=acked,
    )


def baseline_targets(count: int = 32) -> list[Target]:
    return [
        Target(
            path=f"/echo/c{i}/messages",
            headers={"Content-Type": "application/json"},
            pre='{"content":"load ',
            post='"}',
        )
        for i in range(count)
    ]


# ---- setting up data over the API --------------------------------------------------------------


class Api:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base + "/api/v1", timeout=60)

    def register(self, role: str, name: str | None = None) -> dict[str, Any]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        r = self.http.post(
            "/auth/register",
            json={"email": email, "password": PASSWORD, "name": name or role, "role": role},
        )
        r.raise_for_status()
        body = r.json()
        return {"id": body["user"]["id"], "token": body["token"], "email": email}

    def conversation(self, a: dict[str, Any], b: dict[str, Any]) -> str:
        r = self.http.post(
            "/conversations", headers=auth(a["token"]), json={"participantId": b["id"]}
        )
        r.raise_for_status()
        return str(r.json()["id"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_results(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def fail(errors: list[str]) -> None:
    if errors:
        print("FAILED:\n- " + "\n- ".join(errors), file=sys.stderr)
        raise SystemExit(1)
