"""Job context on log lines (job_id, queue, attempt, tenant) and LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging

import pytest
from rq.job import Job, JobStatus

from broxiva.logs import JobContextFilter, JsonFormatter, TextFormatter, job_attempt, job_log_context
from broxiva.queues import enqueue, get_queue, job_options
from tests.broxiva.ops_jobs import fail_once_then_say, say
from tests.workers import start_worker, stop, wait_for, worker_env


def json_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class WorkerLogTests:
    def test_it_tags_every_line_of_a_running_job_and_writes_json(self, acme):
        first = enqueue("email", say, "hello", tenant_id=acme.id)
        retried = enqueue("fx-refresh", fail_once_then_say, "again", tenant_id=acme.id)
        untenanted = enqueue("email", say, "anon")
        fx = get_queue("fx-refresh")
        process = start_worker("email", "fx-refresh", env=worker_env(LOG_FORMAT="json"))
        try:
            wait_for(lambda: fx.fetch_job(retried).get_status() == JobStatus.FINISHED, timeout=40,
                     what="the retried job to finish")
        finally:
            output = stop(process)

        lines = json_lines(output)
        assert lines, output[-2000:]
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        said = {line["message"]: line for line in lines if line["logger"] == "tests.ops"}
        assert said["ops job says hello"] | {"time": None} == {
            "time": None, "level": "INFO", "logger": "tests.ops", "message": "ops job says hello",
            "job_id": first, "queue": "email", "attempt": 1, "tenant": str(acme.id),
        }
        assert (said["ops job fails again"]["job_id"], said["ops job fails again"]["attempt"]) == (retried, 1)
        assert (said["ops job says again"]["job_id"], said["ops job says again"]["attempt"]) == (retried, 2)
        assert "tenant" not in said["ops job says anon"] and said["ops job says anon"]["job_id"] == untenanted
        # RQ's own lines about the job (written by the worker while it runs) carry the ids too.
        traceback_line = next(line for line in lines if "RuntimeError: first run of again fails" in line["message"])
        assert traceback_line["job_id"] == retried and traceback_line["attempt"] == 1
        idle = [line for line in lines if line["message"].startswith("Worker") and "Listening on" in line["message"]]
        assert all("job_id" not in line for line in idle)


class FormatterTests:
    def record(self, message: str = "hello %s", *args) -> logging.LogRecord:
        record = logging.LogRecord("tests.ops", logging.INFO, __file__, 1, message, args or ("world",), None)
        JobContextFilter().filter(record)
        return record

    def job(self, queue: str = "fx-refresh", **kwargs) -> Job:
        options = job_options(queue)
        return Job.create("tests.jobs.sample.record", args=("x",), kwargs=kwargs, retry=options["retry"],
                          origin=get_queue(queue).name, connection=get_queue(queue).connection)

    def test_it_appends_the_context_to_text_lines_only_inside_a_job(self):
        assert TextFormatter().format(self.record()).endswith("tests.ops hello world")
        job = self.job(tenant="acme")
        with job_log_context(job):
            text = TextFormatter().format(self.record())
        assert text.endswith(f"hello world [job_id={job.id} queue=fx-refresh attempt=1 tenant=acme]")

    def test_it_writes_one_json_object_per_line_even_for_a_traceback(self):
        job = self.job(tenant_id=7)
        with job_log_context(job):
            try:
                raise ValueError("bad\nthing")
            except ValueError:
                record = self.record()
                record.exc_info = __import__("sys").exc_info()
                line = JsonFormatter().format(record)
        assert "\n" not in line
        entry = json.loads(line)
        assert entry["tenant"] == "7" and entry["job_id"] == job.id and "ValueError: bad\nthing" in entry["exc_info"]

    def test_it_counts_attempts_from_the_retry_budget(self):
        job = self.job("domain-verification")  # 10 attempts
        assert job.retries_left == 9 and job_attempt(job, "domain-verification") == 1
        job.retries_left = 6
        assert job_attempt(job, "domain-verification") == 4
        job.retries_left = 0
        assert job_attempt(job, "domain-verification") == 10
        job.retries_left = None  # a job enqueued without a retry policy
        assert job_attempt(job, "domain-verification") == 1
