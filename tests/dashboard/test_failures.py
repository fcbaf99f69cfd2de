"""The failures page: groups by task and error type, bulk retry and discard through a confirmation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.dashboard.conftest import messages_in, page
from workers.models import Job, JobStatus

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def failures(make_job):
    """Three ValueErrors of diagnostics.fail (newest last) and one TimeoutError of diagnostics.sleep."""
    now = timezone.now()

    def failed(task: str, error_class: str, minutes_ago: int) -> Job:
        return make_job(task=task, queue="default", status=JobStatus.FAILED, error_class=error_class,
                        error_message=f"failed {XSS}", params={"kind": "permanent"} if task == "diagnostics.fail"
                        else {"seconds": 1.0}, created_at=now - timedelta(minutes=minutes_ago),
                        finished_at=now - timedelta(minutes=minutes_ago))

    values = [failed("diagnostics.fail", "builtins.ValueError", m) for m in (30, 20, 10)]
    timeout = failed("diagnostics.sleep", "builtins.TimeoutError", 5)
    make_job(status=JobStatus.FAILED, error_class="builtins.ValueError", task="diagnostics.fail",
             dismissed_at=now)  # already dealt with: not listed
    return values, timeout


def groups_of(doc) -> dict[tuple[str, str], list[str]]:
    return {(section.get("data-task"), section.get("data-error-class")):
            [box.get("value") for box in section.find_all("input", type="checkbox", name="job")]
            for section in doc.find_all("section", data_testid="failure-group")}


def test_open_failures_are_grouped_by_task_and_error_type_biggest_first(staff_client, failures):
    values, timeout = failures
    response = staff_client.get("/dashboard/failures/")
    doc = page(response)
    groups = groups_of(doc)
    assert list(groups) == [("diagnostics.fail", "builtins.ValueError"), ("diagnostics.sleep", "builtins.TimeoutError")]
    assert groups[("diagnostics.fail", "builtins.ValueError")] == [str(job.pk) for job in reversed(values)]
    assert groups[("diagnostics.sleep", "builtins.TimeoutError")] == [str(timeout.pk)]
    section = doc.find_all("section", data_testid="failure-group")[0]
    assert section.find(data_testid="failure-count").text == "3"
    assert len(section.find_all("button", data_testid="retry-one")) == 3
    assert section.find_all("button", data_testid="retry-selected")
    assert section.find_all("button", data_testid="discard-selected")
    # error messages are text, never markup
    assert XSS not in response.content.decode()


def test_retry_selected_asks_for_confirmation_then_retries_each(staff_client, failures, broker):
    values, _ = failures
    chosen = values[:2]
    # When the operator ticks two jobs and presses "Retry selected"
    confirm = staff_client.get("/dashboard/failures/confirm/",
                               {"action": "retry", "job": [str(job.pk) for job in chosen]})
    # Then a confirmation lists exactly them, and nothing happened yet
    doc = page(confirm)
    assert {row.get("data-job-id") for row in doc.find_all("tr", data_job_id=True)} == {str(j.pk) for j in chosen}
    assert doc.find_all("button", data_testid="confirm")
    assert doc.find("a", data_testid="cancel-confirm").get("href") == "/dashboard/failures/"
    assert not Job.objects.filter(retry_of__isnull=False).exists()
    # When they confirm
    form = {"action": "retry", "job": [str(job.pk) for job in chosen]}
    response = staff_client.post("/dashboard/failures/confirm/", form, follow=True)
    # Then each was retried through the service: a new job each, the failures dismissed and off the page
    assert response.redirect_chain == [("/dashboard/failures/", 302)]
    assert messages_in(response) == ["Retried 2 job(s)"]
    assert set(Job.objects.filter(retry_of__in=chosen).values_list("retry_of", flat=True)) == {j.pk for j in chosen}
    assert all(job.dismissed_at for job in Job.objects.filter(pk__in=[j.pk for j in chosen]))
    assert groups_of(page(response))[("diagnostics.fail", "builtins.ValueError")] == [str(values[2].pk)]
    # And sending the confirmation again retries nothing twice
    again = staff_client.post("/dashboard/failures/confirm/", form, follow=True)
    assert messages_in(again)[0] == "Retried 0 job(s)"
    assert Job.objects.filter(retry_of__in=chosen).count() == 2


def test_discard_selected_dismisses_without_new_jobs(staff_client, failures, broker):
    _, timeout = failures
    confirm = page(staff_client.get("/dashboard/failures/confirm/", {"action": "discard", "job": [str(timeout.pk)]}))
    assert confirm.find("h1").text.startswith("Discard 1 job")
    response = staff_client.post("/dashboard/failures/confirm/", {"action": "discard", "job": [str(timeout.pk)]},
                                 follow=True)
    assert messages_in(response) == ["Discarded 1 job(s)"]
    timeout.refresh_from_db()
    assert timeout.status == JobStatus.FAILED and timeout.dismissed_at is not None
    assert not Job.objects.filter(retry_of=timeout).exists()
    assert ("diagnostics.sleep", "builtins.TimeoutError") not in groups_of(page(response))


def test_a_rows_retry_button_confirms_that_job_alone(staff_client, failures, broker):
    values, _ = failures
    # the per-row button is in the group's form: ticked boxes come along, the row's button wins
    doc = page(staff_client.get("/dashboard/failures/confirm/",
                                {"retry_one": str(values[0].pk), "job": [str(values[1].pk)]}))
    assert [row.get("data-job-id") for row in doc.find_all("tr", data_job_id=True)] == [str(values[0].pk)]
    response = staff_client.post("/dashboard/failures/confirm/", {"action": "retry", "job": [str(values[0].pk)]},
                                 follow=True)
    assert messages_in(response) == ["Retried 1 job(s)"]
    assert list(Job.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True)) == [values[0].pk]


def test_confirming_with_nothing_selected_changes_nothing(staff_client, failures):
    response = staff_client.get("/dashboard/failures/confirm/", {"action": "retry"}, follow=True)
    assert messages_in(response) == ["Select at least one open failure."]
    bogus = staff_client.post("/dashboard/failures/confirm/", {"action": "explode", "job": ["junk"]}, follow=True)
    assert messages_in(bogus) == ["Choose retry or discard."]
    assert not Job.objects.filter(retry_of__isnull=False).exists()


def test_a_group_page_lists_all_of_a_groups_open_failures(staff_client, failures):
    values, _ = failures
    doc = page(staff_client.get("/dashboard/failures/group/",
                                {"task": "diagnostics.fail", "error_class": "builtins.ValueError"}))
    assert groups_of(doc) == {("diagnostics.fail", "builtins.ValueError"): [str(j.pk) for j in reversed(values)]}


def test_the_page_shows_the_biggest_groups_and_links_to_all_of_them(staff_client, make_job, monkeypatch):
    from workers.dashboard import failure_views

    monkeypatch.setattr(failure_views, "GROUP_LIMIT", 2)
    for n, task in enumerate(["diagnostics.noop", "diagnostics.sleep", "diagnostics.fail"]):
        for _ in range(n + 1):
            make_job(task=task, status="FAILED", error_class="x.Boom", error_message="boom")
    shown = page(staff_client.get("/dashboard/failures/")).find_all("section", data_testid="failure-group")
    assert [s.attrs["data-task"] for s in shown] == ["diagnostics.fail", "diagnostics.sleep"]
    everything = staff_client.get("/dashboard/failures/?all=1")
    assert len(page(everything).find_all("section", data_testid="failure-group")) == 3
    assert b'data-testid="more-groups"' not in everything.content
