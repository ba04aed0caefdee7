"""Consent tests: import tasks run in-process, as a worker would, when they are published."""

import pytest


@pytest.fixture(autouse=True)
def import_tasks_in_process(request, monkeypatch):
    """Run a task published by name at once, in this process, through Celery's own `apply`.

    The broker is the boundary replaced here: the test settings' in-memory broker has
    no worker reading it. The tasks run when their transaction commits (tests wrap
    requests in `captureOnCommitCallbacks(execute=True)`, see helpers.web_upload).
    A task that fails fails the test, unless the test takes the failure out of the
    returned list. Tests with a real worker (`celery_worker`) keep the real broker.
    """
    if request.node.get_closest_marker("celery_worker"):
        yield []
        return
    import consent.tasks  # noqa: F401  registers the tasks
    from portal.celery import app

    ran = []

    def send_task(name, args=(), **kwargs):
        result = app.tasks[name].apply(args=args)
        ran.append(result)
        return result

    monkeypatch.setattr(app, "send_task", send_task)
    yield ran
    failed = [r for r in ran if r.failed()]
    if failed:
        pytest.fail(f"a task failed: {failed[0].traceback}")
