"""The dashboard's job list (filters, keyset pages, live rows) and job page (details, escaping, actions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from django.utils import timezone

from tests.dashboard.conftest import messages_in, page
from workers.models import Job, JobStatus

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
XSS = '<script>alert("owned")</script>'


def listed(doc) -> list[str]:
    return [row.get("data-job-id") for row in doc.find_all("tr", data_job_id=True)]


# --- the list --------------------------------------------------------------------------------------


def test_each_filter_narrows_the_list(staff_client, make_job, member, stranger):
    old = make_job(task="diagnostics.sleep", queue="default", status=JobStatus.FAILED, requested_by=member,
                   created_at=T0 - timedelta(days=2))
    mine = make_job(task="diagnostics.noop", status=JobStatus.RUNNING, requested_by=member, created_at=T0)
    theirs = make_job(task="diagnostics.noop", status=JobStatus.READY, requested_by=stranger,
                      created_at=T0 + timedelta(minutes=1))
    everything = {str(job.pk) for job in (old, mine, theirs)}

    def ids(**query: str) -> set[str]:
        return set(listed(page(staff_client.get("/dashboard/jobs/", query))))

    assert ids() == everything
    assert ids(status="FAILED") == {str(old.pk)}
    assert ids(task="diagnostics.noop") == {str(mine.pk), str(theirs.pk)}
    assert ids(queue="default") == {str(old.pk)}
    assert ids(user="member") == {str(old.pk), str(mine.pk)}
    assert ids(since="2026-11-20T11:00") == {str(mine.pk), str(theirs.pk)}
    assert ids(until="2026-11-20T12:00:30") == {str(old.pk), str(mine.pk)}
    assert ids(user="member", status="RUNNING") == {str(mine.pk)}
    assert ids(user="nobody") == set()


def test_a_bad_filter_value_is_reported_not_a_500(staff_client, make_job):
    make_job()
    response = staff_client.get("/dashboard/jobs/", {"since": "yesterday-ish", "status": "BOGUS"})
    doc = page(response)
    errors = doc.find("ul", **{"class": "errors"}).text
    assert "Since" in errors and "Status" in errors
    assert len(listed(doc)) == 1  # the bad filters are left out


def test_older_and_newer_links_walk_the_keyset_pages(staff_client, make_job):
    # Given 120 jobs, one a second
    jobs = [make_job(created_at=T0 + timedelta(seconds=n)) for n in range(120)]
    newest_first = [str(job.pk) for job in reversed(jobs)]
    # When the operator follows "Older" until there is none
    pages, url = [], "/dashboard/jobs/?task=diagnostics.noop"
    while url:
        doc = page(staff_client.get(url))
        pages.append((url, listed(doc)))
        older = doc.find_all("a", rel="next")
        url = older[0].get("href") if older else None
        assert len(pages) < 10
    # Then every job shows once, newest first, in pages of 50, and the filter is kept
    assert [len(ids) for _, ids in pages] == [50, 50, 20]
    assert [job_id for _, ids in pages for job_id in ids] == newest_first
    assert all(parse_qs(urlsplit(u).query).get("task") == ["diagnostics.noop"] for u, _ in pages)
    # And "Newer" from the last page leads back to the middle page; the first page has no "Newer"
    last = page(staff_client.get(pages[-1][0]))
    newer = last.find("a", rel="prev").get("href")
    assert listed(page(staff_client.get(newer))) == pages[1][1]
    assert page(staff_client.get(pages[0][0])).find_all("a", rel="prev") == []


def test_rows_show_progress_and_status_for_live_updates(staff_client, make_job):
    counted = make_job(status=JobStatus.RUNNING, progress_done=3, progress_total=8, progress_message="page 3")
    unknown = make_job(status=JobStatus.RUNNING)
    done = make_job(status=JobStatus.SUCCESSFUL, finished_at=timezone.now())
    doc = page(staff_client.get("/dashboard/jobs/"))
    bar = doc.find("progress", data_job_progress=str(counted.pk))
    assert (bar.get("value"), bar.get("max")) == ("3", "8")
    assert doc.find("progress", data_job_progress=str(unknown.pk)).get("value") is None  # indeterminate
    assert doc.find("span", data_job_status=str(counted.pk)).text == "RUNNING"
    # only active rows are polled
    assert doc.find("tr", data_job_id=str(counted.pk)).get("data-active") == "1"
    assert doc.find("tr", data_job_id=str(done.pk)).get("data-active") is None


def test_the_live_rows_endpoint_answers_the_current_progress(staff_client, make_job):
    running = make_job(status=JobStatus.RUNNING, progress_done=1, progress_total=4)
    other = make_job()
    Job.objects.filter(pk=running.pk).update(progress_done=2, progress_message="half")
    response = staff_client.get("/dashboard/jobs/progress/", {"id": [str(running.pk), "junk"]})
    assert response.status_code == 200
    assert response.json() == {"jobs": [{"id": str(running.pk), "status": "RUNNING",
                                         "progress": {"done": 2, "total": 4, "percent": 50.0, "message": "half"}}]}
    assert str(other.pk) not in response.content.decode()


# --- one job ---------------------------------------------------------------------------------------


def test_the_job_page_shows_params_attempts_error_and_timeline(staff_client, make_job, member):
    job = make_job(task="diagnostics.fail", queue="default", params={"kind": "permanent", "message": "x"},
                   status=JobStatus.FAILED, attempts=2, requested_by=member,
                   error_class="workers.errors.PermanentError", error_message="it broke",
                   error_traceback="Traceback (most recent call last):\n  boom",
                   created_at=T0, started_at=T0 + timedelta(seconds=1), finished_at=T0 + timedelta(seconds=2))
    doc = page(staff_client.get(f"/dashboard/jobs/{job.pk}/"))
    assert doc.find(data_testid="job-status").text == "FAILED"
    assert json.loads(doc.find("pre", data_testid="job-params").text) == {"kind": "permanent", "message": "x"}
    assert doc.find(data_testid="job-attempts").text == "2"
    assert doc.find("pre", data_testid="job-traceback").text.endswith("  boom")
    timeline = [item.find("strong").text for item in doc.find("ol", data_testid="job-timeline").find_all("li")]
    assert timeline == ["created", "started", "failed"]
    # a failed job can be retried, not cancelled
    assert doc.find_all("button", data_testid="retry-job") and not doc.find_all("button", data_testid="cancel-job")


def test_the_job_page_shows_an_urgent_jobs_priority_and_nothing_for_an_ordinary_one(staff_client, make_job):
    urgent, ordinary = make_job(queue="default", priority=0), make_job(queue="default")
    assert doc_priority(staff_client, urgent).startswith("0 (urgent")
    assert doc_priority(staff_client, ordinary) is None


def doc_priority(client, job) -> str | None:
    found = page(client.get(f"/dashboard/jobs/{job.pk}/")).find_all(data_testid="job-priority")
    return found[0].text if found else None


def test_a_traceback_with_markup_is_shown_as_text(staff_client, make_job):
    job = make_job(status=JobStatus.FAILED, error_class="builtins.ValueError", error_message=f"bad {XSS}",
                   error_traceback=f"Traceback:\n  raise ValueError('{XSS}')", progress_message=XSS,
                   params={"note": XSS})
    response = staff_client.get(f"/dashboard/jobs/{job.pk}/")
    html = response.content.decode()
    assert XSS not in html
    assert "raise ValueError(&#x27;&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;&#x27;)" in html
    # and the parsed page shows the text itself, as text
    assert XSS in page(response).find("pre", data_testid="job-traceback").text


def test_an_unknown_job_is_404(staff_client):
    assert staff_client.get("/dashboard/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_cancel_of_a_ready_job_redirects_back_with_a_message(staff_client, make_job):
    job = make_job()
    doc = page(staff_client.get(f"/dashboard/jobs/{job.pk}/"))
    assert doc.find_all("button", data_testid="cancel-job")
    response = staff_client.post(f"/dashboard/jobs/{job.pk}/cancel/", follow=True)
    assert response.redirect_chain == [(f"/dashboard/jobs/{job.pk}/", 302)]
    assert messages_in(response) == ["Cancelled the job."]
    assert page(response).find(data_testid="job-status").text == "CANCELLED"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_cancel_of_a_running_job_asks_it_to_stop(staff_client, make_job):
    job = make_job(status=JobStatus.RUNNING)
    response = staff_client.post(f"/dashboard/jobs/{job.pk}/cancel/", follow=True)
    assert "stops at its next progress check" in messages_in(response)[0]
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.cancel_requested_at is not None


def test_cancel_of_a_finished_job_is_refused_with_a_message(staff_client, make_job):
    job = make_job(status=JobStatus.SUCCESSFUL, finished_at=timezone.now())
    response = staff_client.post(f"/dashboard/jobs/{job.pk}/cancel/", follow=True)
    assert messages_in(response)[0].startswith("Not cancelled:")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL


def test_retry_enqueues_a_new_job_and_dismisses_the_failure(staff_client, make_job, member, broker):
    job = make_job(status=JobStatus.FAILED, requested_by=member, error_class="x.Boom", finished_at=timezone.now())
    response = staff_client.post(f"/dashboard/jobs/{job.pk}/retry/", follow=True)
    retry = Job.objects.get(retry_of=job)
    assert messages_in(response) == [f"Retried as job {retry.pk}."]
    assert (retry.task, retry.status, retry.requested_by) == (job.task, JobStatus.READY, member)
    job.refresh_from_db()
    assert job.dismissed_at is not None
    timeline = page(response).find("ol", data_testid="job-timeline").text
    assert f"as job {retry.pk}" in timeline


def test_get_on_an_action_url_changes_nothing(staff_client, make_job):
    job = make_job()
    assert staff_client.get(f"/dashboard/jobs/{job.pk}/cancel/").status_code == 405
    job.refresh_from_db()
    assert job.status == JobStatus.READY
