"""The README's curl walk-through works as printed, against a server with the demo loaded."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    section = text.split("## Book Now, with curl", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the README lost its curl walk-through"
    return match.group(1)


def test_readme_book_now_walkthrough_works_as_printed(servers, tmp_path):
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("curl is needed for the README walk-through")
        pytest.skip("curl not installed")
    data = str(tmp_path / "data")
    env = {
        **os.environ,
        "PESAN_DATA_DIR": data,
        "PESAN_ARGON2_TIME_COST": "1",
        "PESAN_ARGON2_MEMORY_KIB": "64",
    }
    env.pop("PESAN_DATABASE_URL", None)
    loaded = subprocess.run(
        [sys.executable, "-m", "pesan", "demo"], env=env, capture_output=True, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr.decode()
    server = servers(PESAN_DATA_DIR=data)
    script = "set -euo pipefail\n" + walkthrough()
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "API": f"{server.base}/api/v1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "pending"
    assert lines[1].startswith("Booking request: ")
    assert lines[2] == "accepted"
    assert lines[3].endswith("Z")  # etaAt
    assert len(lines[4]) == 26  # the message id
    assert int(lines[5]) >= 2  # accepted + on the way, unread by Emma
