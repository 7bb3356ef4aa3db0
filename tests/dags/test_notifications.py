"""Run notifications: a log line without ORANGESCRUM_ALERT_EMAIL, a mail with it, never a crash."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from orangescrum import airflow_support as support

CONTEXT = {
    "dag": SimpleNamespace(dag_id="orangescrum_dbt"),
    "run_id": "manual__2026-11-24T02:00:00+00:00",
    "reason": "task_failure",
    "ti": SimpleNamespace(task_id="fact_activities.test"),
}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Mails handed to Airflow's send_email (which reads the AIRFLOW__SMTP__* settings)."""
    import airflow.utils.email

    mails: list[tuple] = []
    monkeypatch.setattr(
        airflow.utils.email, "send_email", lambda to, subject, body: mails.append((to, subject))
    )
    return mails


def test_without_recipients_a_failure_is_one_log_line(monkeypatch, caplog, sent) -> None:
    monkeypatch.delenv(support.ALERT_EMAIL_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger=support.__name__):
        support.RunNotifier("failed")(CONTEXT)
    (record,) = caplog.records
    assert "[orangescrum] orangescrum_dbt failed: manual__2026-11-24T02:00:00+00:00" in (
        record.getMessage()
    )
    assert "Reason: task_failure. Last task: fact_activities.test." in record.getMessage()
    assert sent == []


def test_with_recipients_the_outcome_is_mailed(monkeypatch, sent) -> None:
    monkeypatch.setenv(support.ALERT_EMAIL_ENV, "data@example.com, oncall@example.com")
    support.RunNotifier("succeeded")(CONTEXT | {"reason": "success"})
    assert sent == [
        (
            ["data@example.com", "oncall@example.com"],
            "[orangescrum] orangescrum_dbt succeeded: manual__2026-11-24T02:00:00+00:00",
        )
    ]


def test_a_broken_mail_server_is_logged_not_raised(monkeypatch, caplog) -> None:
    import airflow.utils.email

    def refuse(*_args, **_kwargs):
        raise ConnectionRefusedError("smtp://localhost:25")

    monkeypatch.setenv(support.ALERT_EMAIL_ENV, "data@example.com")
    monkeypatch.setattr(airflow.utils.email, "send_email", refuse)
    with caplog.at_level(logging.ERROR, logger=support.__name__):
        support.RunNotifier("failed")(CONTEXT)
    assert "could not be mailed" in caplog.text
    assert "orangescrum_dbt failed" in caplog.text
