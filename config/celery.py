"""The Celery application. Workers start with `celery -A config worker`."""

import os
import resource

from celery import Celery
from celery.signals import worker_init, worker_process_init
from django.conf import settings

from config.env import default_settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_settings_module())

app = Celery("mlgov")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def limit_address_space(**kwargs) -> None:
    """Cap each worker process's address space (WORKER_MAX_ADDRESS_SPACE_MB, 0 for none), so that work
    which outgrows it fails with MemoryError instead of taking the machine's memory. Prefork children
    also restart once they hold more than WORKER_MAX_MEMORY_MB after a task
    (CELERY_WORKER_MAX_MEMORY_PER_CHILD)."""
    limit_mb = settings.WORKER_MAX_ADDRESS_SPACE_MB
    if limit_mb > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        wanted = limit_mb * 1024 * 1024
        resource.setrlimit(
            resource.RLIMIT_AS, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard)
        )
