"""Passwords are hashed outside any transaction and at a low CPU priority, so a flood of
sign-ins neither holds SQLite's write lock nor starves other requests."""

import os
import threading
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from pesan import auth
from tests.conftest import Api


def test_no_transaction_is_open_while_a_password_is_checked(
    app: FastAPI, api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = api.register()
    checking, go_on = threading.Event(), threading.Event()
    real = auth.verify_password

    def slow_verify(password_hash: str | None, password: str) -> bool:
        checking.set()
        go_on.wait(10)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", slow_verify)
    answers: list[Any] = []
    signing_in = threading.Thread(
        target=lambda: answers.append(
            client.post(
                "/api/v1/auth/login",
                json={"email": account.email, "password": "correct horse"},
            )
        )
    )
    signing_in.start()
    try:
        assert checking.wait(10)
        wrote = threading.Event()

        def write() -> None:
            with app.state.db.transaction() as session:
                session.execute(
                    text("UPDATE users SET name = name WHERE id = :id"), {"id": account.id}
                )
            wrote.set()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(5)
        assert wrote.is_set(), "a write waited for a sign-in's password check"
    finally:
        go_on.set()
        signing_in.join(10)
    assert answers[0].status_code == 200, answers[0].text


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no thread priorities here")
def test_passwords_are_hashed_at_low_priority(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = auth.hash_password

    def recording_hash(password: str) -> str:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real(password)

    monkeypatch.setattr(auth, "hash_password", recording_hash)
    api.register()
    assert seen and seen[0] >= 10
