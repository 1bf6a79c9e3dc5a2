"""The Celery application. Workers: `celery -A arena worker -Q default` and `-Q gen.<slug>`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
# Rating work multiplies contestants x contestants matrices, where numpy's threaded OpenBLAS
# only adds hand-off cost (arena/ranking/__init__.py): one OpenBLAS thread per process unless
# the operator says otherwise. `celery -A arena worker` imports this module before numpy
# loads it. (OpenMP and MKL are left alone: vLLM's CPU engine runs on their threads.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["arena"])
