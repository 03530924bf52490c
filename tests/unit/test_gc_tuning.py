"""`pesan serve` freezes what start-up made and collects the young generation less often; an
app built any other way (tests build many in one process) leaves the collector alone."""

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pesan.app import GC_THRESHOLDS, create_app
from pesan.config import Settings


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _start(tmp_path: Path, own_process: bool) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings, own_process=own_process)) as client:
        assert client.get("/healthz").status_code == 200


def test_a_served_app_freezes_start_up_and_raises_the_threshold(
    tmp_path: Path, collector: None
) -> None:
    _start(tmp_path, own_process=True)
    assert gc.get_freeze_count() > 10_000  # modules, routes, models, statements
    assert gc.get_threshold() == GC_THRESHOLDS


def test_an_app_built_elsewhere_leaves_the_collector_alone(tmp_path: Path, collector: None) -> None:
    before = gc.get_threshold()
    _start(tmp_path, own_process=False)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
