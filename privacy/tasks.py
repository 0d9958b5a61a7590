"""Celery tasks of the privacy app: thin wrappers on core.work.WorkTask (a failure of any kind fails
the release and gives its budget back; a dead worker's release is run again by the sweep)."""

from core.work import work_task
from privacy import services


@work_task("privacy.compute_release", "privacy.PrivacyRelease")
def compute_release(release_id: str) -> None:
    """Compute a large release whose budget is already reserved (a finished release is left alone)."""
    services.release_compute(release_id)
