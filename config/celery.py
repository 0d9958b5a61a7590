"""The Celery application. Workers start with `celery -A config worker`."""

import os

from celery import Celery

from config.env import default_settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_settings_module())

app = Celery("mlgov")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
