"""Celery tasks of the governance app: thin wrappers on core.work.WorkTask."""

from core.work import work_task
from governance import reports


@work_task("governance.render_report", "governance.Report")
def render_report(report_id: str) -> None:
    """Render a report (a failure of any kind fails it; a dead worker's report is rendered again)."""
    reports.report_render(report_id)
