"""POST /sources/<pk>/sync/: 202 with the job, 409 with the active one, permissions."""

from __future__ import annotations

from django.contrib.auth.models import Permission

from workers.models import Job

pytest_plugins = ["tests.api_fixtures"]


def sync_url(source) -> str:
    return f"/sources/{source.pk}/sync/"


def test_sync_request_answers_202_then_409_while_it_is_queued(operator, api_as, make_source, tmp_path):
    source = make_source(tmp_path)
    api = api_as(operator)

    first = api.post(sync_url(source))
    second = api.post(sync_url(source))

    assert first.status_code == 202
    job = Job.objects.get(pk=first.json()["id"])
    assert (job.task, job.params, job.status) == ("sources.sync_source", {"source_id": source.pk}, "READY")
    assert first["Location"] == first.json()["url"]
    assert second.status_code == 409
    assert second.json()["existing_id"] == str(job.pk)


def test_sync_request_needs_the_change_source_permission(make_user, api_as, make_source, tmp_path):
    source = make_source(tmp_path)
    user = make_user("someone")

    assert api_as(user).post(sync_url(source)).status_code == 403

    user.user_permissions.add(Permission.objects.get(content_type__app_label="sources", codename="change_source"))
    user = type(user).objects.get(pk=user.pk)  # permissions are cached on the instance
    assert api_as(user).post(sync_url(source)).status_code == 202


def test_sync_request_of_an_unknown_source_is_404(operator, api_as):
    assert api_as(operator).post("/sources/999999/sync/").status_code == 404


def test_sync_request_requires_authentication(db, client, make_source, tmp_path):
    assert client.post(sync_url(make_source(tmp_path))).status_code == 401
