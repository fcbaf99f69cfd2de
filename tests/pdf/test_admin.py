"""The Report admin: the Build PDF action and the latest build's badge."""

from __future__ import annotations

from django.test import Client

from tests.pdf.conftest import make_report
from workers.models import Job
from workers.pdf import demo
from workers.pdf.models import Report

pytest_plugins = ["tests.api_fixtures"]

CHANGELIST = "/admin/pdf/report/"


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_build_pdf_action_enqueues_and_the_list_shows_the_badge(django_user_model, greenroom_stub_broker):
    # Given a superuser and two reports
    root = django_user_model.objects.create_superuser("root", password=None)
    first, second = make_report(root, title="First", entries=1), make_report(root, title="Second", entries=1)
    client = admin_client(root)

    # When the Build PDF action runs on both
    response = client.post(CHANGELIST, {"action": "build_pdf", "_selected_action": [first.pk, second.pk]},
                           follow=True)

    # Then two builds are queued, and the list shows their status
    assert response.status_code == 200
    jobs = Job.objects.filter(task="pdf.build_report")
    assert sorted(job.params["report_id"] for job in jobs) == [first.pk, second.pk]
    assert "2 PDF build(s) enqueued." in response.text
    page = client.get(CHANGELIST).text
    assert page.count(">READY</a>") == 2
    assert f"/admin/workers/job/{jobs[0].pk}/change/" in page

    # When it runs again while they are queued, it warns instead of failing
    again = client.post(CHANGELIST, {"action": "build_pdf", "_selected_action": [first.pk]}, follow=True)
    assert again.status_code == 200
    assert "a build is already ready" in again.text
    assert Job.objects.filter(task="pdf.build_report").count() == 2


def test_the_change_form_renders_with_inlines(django_user_model):
    root = django_user_model.objects.create_superuser("root", password=None)
    small, large = make_report(root, entries=3), make_report(root, entries=200)
    client = admin_client(root)

    assert 'name="entries-TOTAL_FORMS"' in client.get(f"{CHANGELIST}{small.pk}/change/").text
    # a long table is edited from the entries list instead
    page = client.get(f"{CHANGELIST}{large.pk}/change/")
    assert page.status_code == 200
    assert 'name="entries-TOTAL_FORMS"' not in page.text
    assert 'name="sections-TOTAL_FORMS"' in page.text


def test_demo_seed_is_idempotent(django_user_model):
    owner = django_user_model.objects.create_user("demo")

    demo.seed(owner)
    demo.seed(owner)

    assert Report.objects.count() == 3
    assert max(report.entries.count() for report in Report.objects.all()) >= 200
