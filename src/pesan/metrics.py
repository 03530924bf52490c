"""Prometheus metrics. Names start with `pesan_`; see docs/operations.md for alerts on them."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "pesan_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "pesan_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BOOKINGS_CREATED = Counter(
    "pesan_bookings_created_total",
    "Book Now requests by outcome: created, replayed, or the problem code.",
    ["outcome"],
)
MESSAGES_SENT = Counter("pesan_messages_sent_total", "Chat messages stored.", ["type"])
UNHANDLED_ERRORS = Counter("pesan_unhandled_errors_total", "Requests that ended in a 500.")

# Live events
WS_OPEN = Gauge("pesan_ws_connections", "Open WebSocket connections in this process.")
EVENTS_DELIVERED = Counter("pesan_events_delivered_total", "Events sent down WebSockets.", ["type"])
EVENT_LAG = Histogram(
    "pesan_event_delivery_lag_seconds",
    "From commit to the frame being sent.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BROKER_ERRORS = Counter("pesan_broker_errors_total", "Failures talking to the broker.", ["op"])
WS_DROPPED = Counter("pesan_ws_dropped_total", "Sockets closed by the server.", ["reason"])

# Hardening
THROTTLED = Counter("pesan_throttled_total", "Requests refused 429 by a limit.", ["limit"])
DATABASE_UNAVAILABLE = Counter(
    "pesan_database_unavailable_total", "Requests answered 503: the database failed or timed out."
)

# Periodic work (scheduled.py)
JOB_RUNS = Counter("pesan_job_runs_total", "Periodic job runs, by outcome.", ["job", "outcome"])
JOB_EFFECTS = Counter(
    "pesan_job_effects_total",
    "What periodic jobs did: requests expired, reminders sent, events pruned.",
    ["job"],
)
GROUP_COMMIT_JOBS = Histogram(
    "pesan_group_commit_jobs",
    "Write jobs per SQLite group commit, by where it ran (the event loop, or the writer's "
    "thread when the write lock was held elsewhere).",
    ["where"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
