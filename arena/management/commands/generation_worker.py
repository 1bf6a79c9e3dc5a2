"""Run a generation worker: one vLLM engine in this process, many task threads feeding it."""

from __future__ import annotations

import socket
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.celery import app
from arena.generation.backend import contestant_spec, engines_shutdown, engines_start, vllm_spec
from arena.models import Contestant


class Command(BaseCommand):
    help = (
        "Serve the generation queues gen.<slug> of the given contestants with a Celery worker "
        "(threads pool) around one shared model engine per model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contestant", action="append", default=[], help="slug (repeat)")
        parser.add_argument(
            "--all-local", action="store_true", help="every active contestant on the vLLM backend"
        )
        parser.add_argument(
            "--concurrency", type=int, default=settings.ARENA_GENERATION_CONCURRENCY
        )
        parser.add_argument("--no-warm-up", action="store_true", help="start engines lazily")
        parser.add_argument(
            "--queue", action="append", default=[], help="also consume this queue (repeat)"
        )
        parser.add_argument(
            "--warm-model",
            action="append",
            default=[],
            help="start a vLLM engine for this model directory before consuming (repeat)",
        )
        parser.add_argument("--hostname", default=f"gen@{socket.gethostname()}")

    def handle(self, *args: Any, **options: Any) -> None:
        contestants = list(Contestant.objects.filter(slug__in=options["contestant"]))
        missing = set(options["contestant"]) - {c.slug for c in contestants}
        if missing:
            raise CommandError(f"unknown contestant slugs: {', '.join(sorted(missing))}")
        if options["all_local"]:
            contestants += list(
                Contestant.objects.filter(active=True, backend=Contestant.Backend.VLLM).exclude(
                    pk__in=[c.pk for c in contestants]
                )
            )
        queues = sorted({c.queue_name for c in contestants} | set(options["queue"]))
        if not queues:
            raise CommandError(
                "nothing to serve: pass --contestant SLUG, --all-local or --queue NAME"
            )
        specs = [contestant_spec(c) for c in contestants if c.backend == Contestant.Backend.VLLM]
        specs += [vllm_spec(path) for path in options["warm_model"]]
        if specs and not options["no_warm_up"]:
            self.stdout.write(f"starting engines for {', '.join(s.model for s in specs)}")
            engines_start(specs)
        self.stdout.write(f"serving {', '.join(queues)}")
        worker = app.Worker(
            queues=queues,
            pool_cls="threads",
            concurrency=options["concurrency"],
            hostname=options["hostname"],
            loglevel="INFO",
            prefetch_multiplier=1,
        )
        worker.start()
        engines_shutdown()
        if worker.exitcode:
            raise SystemExit(worker.exitcode)
