"""sources.sync_source and sources.sync_all, run eagerly through the ledger on real folders and repos."""

from __future__ import annotations

from workers.documents.models import Document
from workers.models import Job, JobStatus
from workers.services import job_enqueue
from workers.sources.demo import seed as seed_sources
from workers.sources.models import Source

from .conftest import write

SYNC = "sources.sync_source"
EMBED = "documents.embed_document"


def sync(source: Source) -> Job:
    return job_enqueue(task=SYNC, params={"source_id": source.pk})


def counts(job: Job) -> dict[str, int]:
    return {key: value for key, value in job.result.items() if key != "errors"}


def embedded_paths(since: int = 0) -> list[str]:
    ids = [job.params["document_id"] for job in Job.objects.filter(task=EMBED).order_by("created_at")[since:]]
    return sorted(Document.objects.filter(pk__in=ids).values_list("path", flat=True))


def test_directory_sync_creates_updates_removes_and_skips(eager, tmp_path, make_source):
    # Given a folder with three matching files and one that does not match
    root = tmp_path / "docs"
    write(root, {"a.md": "# Alpha\nFirst.", "b.txt": "Bravo text.", "sub/c.rst": "Charlie\n=======\nThird.",
                 "skip.py": "print()"})
    source = make_source(root)

    first = sync(source)

    assert first.status == JobStatus.SUCCESSFUL
    assert counts(first) == {"created": 3, "updated": 0, "skipped": 0, "removed": 0, "failed": 0}
    titles = dict(Document.objects.values_list("path", "title"))
    assert titles == {"a.md": "Alpha", "b.txt": "b", "sub/c.rst": "Charlie"}
    assert embedded_paths() == ["a.md", "b.txt", "sub/c.rst"]
    assert first.progress_done == first.progress_total == 3

    # When one file changes, one is deleted and one is added
    write(root, {"a.md": "# Alpha\nFirst, revised.", "d.md": "Delta."})
    (root / "b.txt").unlink()
    second = sync(source)

    # Then the counts say so, and only the changed documents are embedded again
    assert counts(second) == {"created": 1, "updated": 1, "skipped": 1, "removed": 1, "failed": 0}
    assert Document.objects.get(path="b.txt").removed
    assert embedded_paths(since=3) == ["a.md", "d.md"]

    # And a third run finds nothing to do
    third = sync(source)
    assert counts(third) == {"created": 0, "updated": 0, "skipped": 3, "removed": 0, "failed": 0}
    assert Job.objects.filter(task=EMBED).count() == 5
    source.refresh_from_db()
    assert source.last_synced_at is not None
    assert source.last_result == third.result


def test_a_file_that_comes_back_is_restored(eager, tmp_path, make_source):
    root = tmp_path / "docs"
    write(root, {"a.md": "Alpha."})
    source = make_source(root)
    sync(source)
    (root / "a.md").unlink()
    sync(source)
    write(root, {"a.md": "Alpha."})

    job = sync(source)

    assert counts(job)["updated"] == 1
    assert not Document.objects.get(path="a.md").removed
    assert Job.objects.filter(task=EMBED).count() == 1  # same text: still embedded


def test_binary_and_non_utf8_files_count_as_failed(eager, tmp_path, make_source):
    root = tmp_path / "docs"
    write(root, {"good.md": "Fine.", "nul.md": b"\x00\x01binary", "latin.txt": "caf\xe9".encode("latin-1")})

    job = sync(make_source(root))

    assert job.status == JobStatus.SUCCESSFUL
    assert counts(job) == {"created": 1, "updated": 0, "skipped": 0, "removed": 0, "failed": 2}
    assert sorted(error["path"] for error in job.result["errors"]) == ["latin.txt", "nul.md"]


def test_a_missing_directory_fails_with_a_readable_error(eager, tmp_path, make_source):
    job = sync(make_source(tmp_path / "nowhere"))

    assert job.status == JobStatus.FAILED
    assert "does not exist" in job.error_message
    assert job.attempts == 1


def test_git_sync_reads_the_branch_and_follows_new_commits(eager, git_repo, make_source):
    # Given a git repository given by file:// URL (mirrored, like a remote one)
    root = git_repo({"README.md": "# Readme\nHello.", "docs/guide.md": "# Guide\nSteps.", "logo.png": b"\x89PNG"})
    source = make_source(f"file://{root}", kind="git")

    first = sync(source)

    assert first.status == JobStatus.SUCCESSFUL, first.error_message
    assert counts(first) == {"created": 2, "updated": 0, "skipped": 0, "removed": 0, "failed": 0}
    assert dict(Document.objects.values_list("path", "title")) == {"README.md": "Readme", "docs/guide.md": "Guide"}

    # When a commit changes one file and removes the other
    git_repo({"README.md": "# Readme\nHello again."}, remove=("docs/guide.md",))
    second = sync(source)

    assert counts(second) == {"created": 0, "updated": 1, "skipped": 0, "removed": 1, "failed": 0}
    assert "Hello again" in Document.objects.get(path="README.md").text


def test_git_sync_of_a_local_repository_path(eager, git_repo, make_source):
    root = git_repo({"a.md": "Alpha."})

    job = sync(make_source(root, kind="git"))

    assert counts(job)["created"] == 1


def test_git_sync_of_an_uncloneable_url_fails_readably(eager, tmp_path, make_source):
    job = sync(make_source(f"file://{tmp_path}/not-a-repo", kind="git"))

    assert job.status == JobStatus.FAILED
    assert "cannot read git repository" in job.error_message


def test_git_sync_of_an_unknown_branch_fails_readably(eager, git_repo, make_source):
    root = git_repo({"a.md": "Alpha."})

    job = sync(make_source(root, kind="git", branch="nope"))

    assert job.status == JobStatus.FAILED
    assert "branch 'nope' not found" in job.error_message


def test_sync_all_skips_sources_already_syncing(db, greenroom_stub_broker, tmp_path, make_source):
    from workers.jobs.sources import sync_all

    busy, idle = make_source(tmp_path / "a"), make_source(tmp_path / "b")
    make_source(tmp_path / "c", active=False)
    sync(busy)  # queued on the stub broker: still READY

    result = sync_all()

    assert result == {"queued": 1, "skipped": 1}
    queued = sorted(job.params["source_id"] for job in Job.objects.filter(task=SYNC))
    assert queued == sorted([busy.pk, idle.pk])


def test_demo_source_reads_the_projects_docs(eager):
    seed_sources()
    seed_sources()  # idempotent
    source = Source.objects.get()

    job = sync(source)

    assert job.status == JobStatus.SUCCESSFUL
    assert job.result["created"] >= 3
