"""Requeue failed jobs (the seed's ``job.retry()``), exactly as the django-rq dashboard does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus, requeue_job
from rq.registry import FailedJobRegistry

from broxiva.management.errors import redis_required
from broxiva.policies import LIVE_STATUSES
from broxiva.queues import UnknownQueue, get_queue, policy


class Command(BaseCommand):
    help = (
        "Requeue failed jobs of a queue: --job-id ID… or --all. Like the dashboard's Requeue, this does not "
        "restore the job's attempt budget: a job that used all its attempts runs once more and, if it fails "
        "again, goes straight back to failed. --reset-attempts gives it its queue's full budget again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("queue", help="logical queue name, e.g. fx-refresh")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--job-id", nargs="+", dest="job_ids", metavar="ID", help="failed job ids to requeue")
        which.add_argument("--all", action="store_true", help="every job in the queue's failed registry")
        parser.add_argument("--reset-attempts", action="store_true",
                            help="restore the queue policy's full retry budget before requeueing")
        parser.add_argument("--dry-run", action="store_true", help="say what would be requeued, change nothing")

    @redis_required
    def handle(self, *args: Any, **options: Any) -> None:
        name = options["queue"]
        try:
            queue = get_queue(name)
            retries = policy(name).retries
        except UnknownQueue as exc:
            raise CommandError(str(exc)) from None
        registry = FailedJobRegistry(queue=queue)
        job_ids = registry.get_job_ids(cleanup=False) if options["all"] else list(dict.fromkeys(options["job_ids"]))
        dry_run, reset = options["dry_run"], options["reset_attempts"]
        done, problems = [], []
        for job_id in job_ids:
            if job_id not in registry:
                job = queue.fetch_job(job_id)
                state = f"status {JobStatus(job.get_status()).value}" if job is not None else "no such job"
                problems.append(f"{job_id}: not in the failed registry of {name} ({state})")
                continue
            job = queue.fetch_job(job_id)
            if job is None:  # listed but its data expired
                problems.append(f"{job_id}: its data is gone (expired); remove it with clean_jobs")
                continue
            status = job.get_status(refresh=False)
            if status in LIVE_STATUSES:  # a new job under the same id: RQ left the old entry; requeueing runs it twice
                problems.append(f"{job_id}: not requeued, it is {JobStatus(status).value} again under this id")
                continue
            left = retries if reset else (job.retries_left or 0)
            verb = "would requeue" if dry_run else "requeued"
            self.stdout.write(f"{verb} {job_id} {job.func_name} (retries left after requeue: {left})")
            if dry_run:
                done.append(job_id)
                continue
            if reset:
                queue.connection.hset(job.key, "retries_left", retries)
            try:
                requeue_job(job_id, connection=queue.connection, serializer=queue.serializer)
            except (InvalidJobOperation, NoSuchJobError):  # requeued or deleted meanwhile
                problems.append(f"{job_id}: left the failed registry while requeueing")
                continue
            done.append(job_id)
        summary = f"{'dry run: would requeue' if dry_run else 'requeued'} {len(done)} failed job(s) on {name}"
        self.stdout.write(summary)
        if problems:
            raise CommandError("; ".join(problems))
