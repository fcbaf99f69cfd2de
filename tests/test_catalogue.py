"""Job declarations: checked when declared, with per-queue defaults instead of Dramatiq's."""

from __future__ import annotations

import dataclasses

import dramatiq
import pydantic
import pytest

from workers import catalogue, services
from workers.catalogue import QUEUE_DEFAULTS, job
from workers.errors import CatalogueError, PermanentError, TransientError
from workers.models import Job, JobStatus

pytest_plugins = ["tests.api_fixtures"]

# Dramatiq's own defaults, which no catalogue job may end up with.
DRAMATIQ_MAX_RETRIES = 20
DRAMATIQ_MAX_BACKOFF_MS = 7 * 24 * 3600 * 1000
DRAMATIQ_TIME_LIMIT_MS = 10 * 60 * 1000


class CountParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    n: int = 1


@dataclasses.dataclass
class NotAModel:
    n: int = 1


def noop() -> None:
    return None


# --- refused declarations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["noop", "Tests.noop", "tests.Noop", "tests.noop.extra", "1tests.noop", "tests.1noop", "tests-x.noop", "",
     "tests.", ".noop", "tests .noop", "tests.noop\n"],
)
def test_a_badly_named_job_is_refused_when_declared(declare_job, name):
    with pytest.raises(CatalogueError, match="must look like"):
        declare_job(name)
    assert catalogue.get(name) is None


def test_a_job_on_an_unknown_queue_is_refused(declare_job):
    with pytest.raises(CatalogueError, match="queue 'fast' is not one of interactive, default, batch"):
        declare_job("tests.fast", queue="fast")
    assert catalogue.get("tests.fast") is None


def test_a_name_already_in_the_catalogue_is_refused(declare_job):
    spec = catalogue.get("diagnostics.noop")

    with pytest.raises(CatalogueError, match="declared twice"):
        declare_job("diagnostics.noop")
    assert catalogue.get("diagnostics.noop") is spec


def test_declaring_a_new_name_twice_is_refused_the_second_time(declare_job):
    first = declare_job("tests.once")

    with pytest.raises(CatalogueError, match="declared twice"):
        declare_job("tests.once", queue="batch")
    assert catalogue.get("tests.once") is first


def test_one_declaration_applied_to_two_functions_is_refused(declare_job):
    declare = job("tests.shared")
    declare(noop)

    with pytest.raises(CatalogueError, match="declared twice"):
        declare(lambda: None)
    assert catalogue.get("tests.shared").fn is noop


@pytest.mark.parametrize("params", [dict, NotAModel, CountParams(), "CountParams", None])
def test_params_that_are_not_a_pydantic_model_class_are_refused(declare_job, params):
    with pytest.raises(CatalogueError, match="pydantic model class"):
        declare_job("tests.params", params=params)
    assert catalogue.get("tests.params") is None


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"time_limit": 10, "hard_time_limit": 5}, "hard_time_limit .5. is below time_limit .10."),
        ({"queue": "batch", "hard_time_limit": 60}, "hard_time_limit .60. is below time_limit .3600."),
        ({"max_retries": -1}, "max_retries"),
        ({"min_backoff": 10, "max_backoff": 1}, "backoff"),
        ({"min_backoff": 0}, "backoff"),
        ({"time_limit": 0}, "time_limit .0. must be positive"),
        ({"unique_key": "report"}, "unique_key must be a function"),
    ],
)
def test_inconsistent_options_are_refused_when_declared(declare_job, options, reason):
    with pytest.raises(CatalogueError, match=reason):
        declare_job("tests.limits", **options)
    assert catalogue.get("tests.limits") is None


def test_an_unknown_option_is_refused_when_declared(declare_job):
    with pytest.raises(TypeError, match="retries"):
        declare_job("tests.typo", retries=3)


# --- defaults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("queue", ["interactive", "default", "batch"])
def test_a_job_gets_its_queues_defaults(declare_job, queue):
    spec = declare_job(f"tests.on_{queue}", queue=queue)

    defaults = QUEUE_DEFAULTS[queue]
    assert spec.queue == queue
    assert (spec.max_retries, spec.min_backoff, spec.max_backoff) == (
        defaults.max_retries, defaults.min_backoff, defaults.max_backoff)
    assert (spec.time_limit, spec.hard_time_limit, spec.priority) == (
        defaults.time_limit, defaults.hard_time_limit, defaults.priority)
    assert spec.params is catalogue.NoParams


@pytest.mark.parametrize("queue", ["interactive", "default", "batch"])
def test_the_dramatiq_actor_mirrors_the_declaration_not_dramatiqs_defaults(declare_job, queue):
    spec = declare_job(f"tests.actor_{queue}", queue=queue)

    actor = spec.actor
    assert actor is not None
    assert actor.actor_name == spec.name
    assert actor.queue_name == queue
    assert actor.priority == spec.priority
    assert actor.options["max_retries"] == spec.max_retries != DRAMATIQ_MAX_RETRIES
    assert actor.options["min_backoff"] == int(spec.min_backoff * 1000)
    assert actor.options["max_backoff"] == int(spec.max_backoff * 1000) < DRAMATIQ_MAX_BACKOFF_MS
    assert actor.options["time_limit"] == int(spec.time_limit * 1000)


def test_stated_options_win_over_the_queues_defaults(declare_job):
    spec = declare_job("tests.stated", queue="batch", max_retries=0, min_backoff=0.5, max_backoff=2, time_limit=5,
                       hard_time_limit=7, priority=3, params=CountParams)

    assert (spec.max_retries, spec.min_backoff, spec.max_backoff) == (0, 0.5, 2)
    assert (spec.time_limit, spec.hard_time_limit, spec.priority) == (5, 7, 3)
    assert spec.params is CountParams
    assert spec.actor.options["time_limit"] == 5000


def test_a_soft_limit_without_a_hard_limit_keeps_the_classes_margin_above_it(declare_job):
    # interactive: soft 30 s, hard 60 s → a 30 s margin for the soft limit to act first
    spec = declare_job("tests.long", queue="interactive", time_limit=600)

    assert spec.hard_time_limit == 630


def test_every_catalogue_job_states_limits_tighter_than_dramatiqs_defaults():
    specs = catalogue.all_jobs()

    assert {"diagnostics.noop", "diagnostics.sleep", "diagnostics.fail"} <= {spec.name for spec in specs}
    for spec in specs:
        assert spec.max_retries < DRAMATIQ_MAX_RETRIES, spec.name
        assert spec.max_backoff * 1000 < DRAMATIQ_MAX_BACKOFF_MS, spec.name
        assert spec.hard_time_limit >= spec.time_limit, spec.name
        if spec.queue == "interactive":
            assert spec.time_limit * 1000 < DRAMATIQ_TIME_LIMIT_MS, spec.name


# --- transient or permanent ------------------------------------------------------------------------


class QuotaExceeded(Exception):
    pass


def test_transient_errors_are_the_defaults_plus_the_declared_ones(declare_job):
    spec = declare_job("tests.quota", transient=(QuotaExceeded,))

    assert spec.is_transient(QuotaExceeded())
    assert spec.is_transient(TransientError())
    assert spec.is_transient(ConnectionError())
    assert spec.is_transient(TimeoutError())
    assert not spec.is_transient(ValueError())
    assert not spec.is_transient(PermanentError())


def test_a_permanent_error_is_never_transient_even_when_declared_so(declare_job):
    class PermanentConnectionError(PermanentError, ConnectionError):
        pass

    spec = declare_job("tests.stubborn", transient=(PermanentError,))

    assert not spec.is_transient(PermanentError())
    assert not spec.is_transient(PermanentConnectionError())


# --- the registry ----------------------------------------------------------------------------------


def test_the_registry_lists_jobs_by_name_and_answers_none_for_unknown_ones(declare_job):
    declare_job("aaa.first")
    declare_job("zzz.last")

    names = [spec.name for spec in catalogue.all_jobs()]

    assert names == sorted(names)
    assert names[0] == "aaa.first"
    assert names[-1] == "zzz.last"
    assert catalogue.get("nobody.here") is None


def test_a_declared_job_runs_by_name_with_validated_params(declare_job, db, settings):
    # Given a job declared with a params model and a unique key derived from its params
    settings.GREENROOM_EAGER = True

    def count(*, n: int) -> dict[str, int]:
        return {"double": 2 * n}

    declare_job("tests.count", fn=count, params=CountParams, unique_key=lambda params: f"count:{params['n']}")

    # When it is enqueued by name
    job_row = services.job_enqueue(task="tests.count", params={"n": "21"})

    # Then it ran with the validated params, under the derived key
    job_row.refresh_from_db()
    assert job_row.status == JobStatus.SUCCESSFUL
    assert job_row.result == {"double": 42}
    assert job_row.params == {"n": 21}
    assert Job.objects.get(unique_key="count:21").pk == job_row.pk


def test_a_renamed_job_keeps_its_former_name_for_messages_and_rows_in_flight(declare_job, db, settings):
    # Given a job renamed from "tests.old_name", declared with the old name as an alias
    settings.GREENROOM_EAGER = True
    spec = declare_job("tests.new_name", fn=lambda: {"ran": "new"}, aliases=("tests.old_name",))
    broker = dramatiq.get_broker()
    # Then a message still queued under the old name finds an actor that runs the job
    assert broker.get_actor("tests.old_name").queue_name == spec.queue
    assert catalogue.get("tests.old_name") is spec
    # And a ledger row written before the rename runs as the new job
    old_row = Job.objects.create(task="tests.old_name", queue=spec.queue)
    broker.get_actor("tests.old_name").fn(job_id=str(old_row.pk))
    old_row.refresh_from_db()
    assert (old_row.status, old_row.result) == (JobStatus.SUCCESSFUL, {"ran": "new"})
    # And enqueueing by the old name creates a job under the new one
    assert services.job_enqueue(task="tests.old_name").task == "tests.new_name"
    # But the old name is not listed as a job of its own, and cannot be declared again
    assert "tests.old_name" not in {s.name for s in catalogue.all_jobs()}
    with pytest.raises(catalogue.CatalogueError, match="already a job name or alias"):
        declare_job("tests.other", aliases=("tests.old_name",))
    with pytest.raises(catalogue.CatalogueError, match="declared twice"):
        declare_job("tests.old_name")
