"""Runs are retried and notified whoever started them: a cron-style `syncdash run` that fails against a local
server delivers its own `failed` event (no daemon is alive), and a later `daemon --once` retries it, exactly
once, and notifies the recovery. Real processes, a real SQLite store, the sample REST API, a local webhook."""

from __future__ import annotations

from conftest import Project, Receiver
from test_daemon import REST, runs

from syncdash_demo.sampleapi import SampleApi

CRON_REST = REST.replace("backoff: 0.5s", "backoff: 0.2s")


def test_cron_cli_failure_is_retried_by_a_later_daemon_once_and_notified_once(project: Project,
                                                                             receiver: Receiver) -> None:
    with SampleApi(n=120, lifetime=120) as api:
        project.config(CRON_REST.format(url=api.url, hook=receiver.url, auth=""))
        api.fail("page=2&", 503, times=1)
        cli = project.cli("run", "players")
        assert cli.returncode == 1, cli.stdout + cli.stderr
        assert "warning" not in cli.stderr, cli.stderr
        # the CLI delivered its own event before exiting: nothing had to wait for a daemon
        [failed] = receiver.events
        (first, trigger, status, _a, _p), = runs(project)
        assert (failed["event"], failed["run_id"], trigger, status) == ("failed", first, "cli", "failed")
        assert project.query("SELECT notified_at IS NOT NULL, followed_up_at IS NULL FROM syncdash_runs") \
            == [(1, 1)]

        once = project.cli("daemon", "--once")
        assert once.returncode == 0, once.stderr
        assert [r[1:] for r in runs(project)] == [("cli", "failed", 1, None), ("retry", "succeeded", 2, first)]
        second = runs(project)[1][0]
        assert [(e["event"], e["run_id"]) for e in receiver.events] == [("failed", first), ("recovered", second)]

        again = project.cli("daemon", "--once")  # each finished run is followed up once, across daemons
        assert again.returncode == 0, again.stderr
    assert len(runs(project)) == 2
    assert [e["event"] for e in receiver.events] == ["failed", "recovered"]
    assert project.query("SELECT COUNT(*) FROM syncdash_runs WHERE followed_up_at IS NULL "
                         "OR notified_at IS NULL") == [(0,)]


def test_a_non_retryable_cli_failure_is_not_retried_by_the_daemon(project: Project, receiver: Receiver) -> None:
    from syncdash_demo.sampleapi import AuthSpec

    with SampleApi(n=60, auth=AuthSpec.bearer("right-token"), lifetime=120) as api:
        project.config(CRON_REST.format(url=api.url, hook=receiver.url,
                                        auth="    auth: {type: bearer, token: wrong-token}\n"))
        assert project.cli("run", "players").returncode == 1
        once = project.cli("daemon", "--once")
        assert once.returncode == 0, once.stderr
    assert [r[1:3] for r in runs(project)] == [("cli", "failed")]
    assert [e["event"] for e in receiver.events] == ["failed"]
    assert "run failed for good" in once.stderr
