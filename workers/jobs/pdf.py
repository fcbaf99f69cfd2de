"""PDF jobs.

- `pdf.build_report` `{"report_id": n}`: renders the report to `MEDIA_ROOT/pdf/<job id>.pdf` and
  returns `{"path": "pdf/<job id>.pdf", "pages": n, "bytes": size}`. One build per report at a time
  (unique key): asking again while one is queued or running gets that job.
"""

from __future__ import annotations

import pydantic

from workers.catalogue import job
from workers.context import current_job
from workers.errors import PermanentError
from workers.lib.pdf import render_report
from workers.pdf import conf
from workers.pdf.models import Report


class BuildReportParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    report_id: int = pydantic.Field(ge=1)


@job(
    "pdf.build_report",
    queue="interactive",
    params=BuildReportParams,
    # A build is deterministic: retry only what the catalogue deems transient (database away), briefly.
    max_retries=2,
    min_backoff=1,
    max_backoff=10,
    # Someone waits, but long reports take time: 1,000 pages measured ~30 s on a busy 2-core machine
    # (bench/pdf_build.py). The soft limit leaves 10x headroom; the hard one 60 s for the soft one to act.
    time_limit=300,
    hard_time_limit=360,
    unique_key=lambda params: f"pdf.build_report:{params['report_id']}",
)
def build_report(*, report_id: int) -> dict[str, object]:
    ctx = current_job()
    report = Report.objects.filter(pk=report_id).first()  # re-fetched: it may have changed or gone
    if report is None:
        raise PermanentError(f"report {report_id} does not exist (deleted before its PDF was built?)")
    # Named after the job, where the views and the clean-up look (workers.pdf.selectors.build_file).
    path = conf.get().directory / f"{ctx.job_id}.pdf"

    def on_progress(done: int, total: int) -> None:
        ctx.progress(done, total, f"{done} of {total} sections and entries laid out")

    result = render_report(report, path=path, on_progress=on_progress)
    return {"path": f"{conf.PDF_DIR}/{path.name}", "pages": result.pages, "bytes": result.bytes}
