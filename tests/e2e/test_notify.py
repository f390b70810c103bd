"""Run notifications: webhook delivery, signatures, retries, the command hook, and which runs notify."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from syncdash.service.notify import Delivery, Notifier, NotifyConfig, build_event, event_for_run, sign, verify

SECRET = "s3cret-webhook-key"


class Receiver:
    """A local webhook endpoint: records each request, answers with the scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status, headers, reply = receiver.script.pop(0) if receiver.script else (200, {}, b"ok")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def respond(self, *statuses: int | tuple[int, dict[str, str], bytes]) -> None:
        for s in statuses:
            self.script.append(s if isinstance(s, tuple) else (s, {}, b""))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join(5)


def failed_run(**kw: Any) -> SimpleNamespace:
    base = dict(id=7, source="players", status="failed", dry_run=False, inserted=3, updated=2, unchanged=10,
                deleted=1, failed=0, skipped=0, error="GET https://api.example.com/v1: HTTP 503",
                error_type="http", started_at=datetime(2026, 11, 23, 12, 0, 0, 250000),
                finished_at=datetime(2026, 11, 23, 12, 0, 4))
    base.update(kw)
    return SimpleNamespace(**base)


def notifier(cfg: dict[str, Any], sleeps: list[float] | None = None, **kw: Any) -> Notifier:
    cfg = {"backoff": 0.01, **cfg}
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return Notifier(NotifyConfig.model_validate(cfg), sleep=record, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- which runs notify ------------------------------------------------------------------------------------


def test_event_for_run() -> None:
    assert event_for_run(failed_run(), None) == "failed"
    assert event_for_run(failed_run(), "failed") == "failed"
    assert event_for_run(failed_run(status="partial"), "succeeded") == "partial"
    assert event_for_run(failed_run(status="succeeded"), "failed") == "recovered"
    assert event_for_run(failed_run(status="succeeded"), "succeeded") is None
    assert event_for_run(failed_run(status="succeeded"), None) is None
    assert event_for_run(failed_run(status="succeeded"), "partial") is None
    assert event_for_run(failed_run(status="cancelled"), "failed") is None
    assert event_for_run(failed_run(dry_run=True), None) is None


def test_build_event_shape() -> None:
    ev = build_event("failed", "players", failed_run(), now=datetime(2026, 11, 23, 12, 0, 5))
    assert len(ev["id"]) == 32 and int(ev["id"], 16) >= 0
    ev.pop("id")
    assert ev == {
        "event": "failed", "source": "players", "run_id": 7, "status": "failed",
        "counts": {"inserted": 3, "updated": 2, "unchanged": 10, "deleted": 1, "failed": 0, "skipped": 0},
        "error": "GET https://api.example.com/v1: HTTP 503", "error_type": "http",
        "started_at": "2026-11-23T12:00:00Z", "finished_at": "2026-11-23T12:00:04Z",
        "sent_at": "2026-11-23T12:00:05Z",
    }
    overdue = build_event("overdue", "players", None)
    assert overdue["run_id"] is None and overdue["status"] is None and overdue["started_at"] is None
    assert overdue["counts"] == dict.fromkeys(("inserted", "updated", "unchanged", "deleted", "failed", "skipped"), 0)
    assert overdue["sent_at"].endswith("Z")
    assert build_event("overdue", "x", None)["id"] != overdue["id"]
    with pytest.raises(ValueError, match="unknown event"):
        build_event("exploded", "players", None)


def test_config_shorthand_and_validation() -> None:
    one = NotifyConfig.model_validate({"webhooks": "https://hooks.example.com/a"})
    assert [w.url for w in one.webhooks] == ["https://hooks.example.com/a"]
    mixed = NotifyConfig.model_validate({"webhooks": ["http://a.example/x", {"url": "http://b.example/y",
                                                                              "secret": "k"}]})
    assert [(w.url, w.secret) for w in mixed.webhooks] == [("http://a.example/x", None), ("http://b.example/y", "k")]
    assert NotifyConfig().on == ["failed", "recovered", "overdue"]
    with pytest.raises(ValidationError, match="http"):
        NotifyConfig.model_validate({"webhooks": "ftp://example.com/x"})
    with pytest.raises(ValidationError):
        NotifyConfig.model_validate({"on": ["exploded"]})
    with pytest.raises(ValidationError):
        NotifyConfig.model_validate({"webhooks": [{"url": "http://a.example", "sekret": "x"}]})


# ---- webhooks ---------------------------------------------------------------------------------------------


def test_failed_run_is_delivered_once_with_the_event_json(receiver: Receiver) -> None:
    ev = build_event("failed", "players", failed_run())
    out = notifier({"webhooks": [{"url": receiver.url, "headers": {"X-Team": "data"}}]}).send(ev)
    assert out == [Delivery(receiver.url, True, 1, 200, None)]
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert json.loads(req["body"]) == ev
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["User-Agent"] == "syncdash"
    assert req["headers"]["X-Team"] == "data"
    assert req["headers"]["X-Syncdash-Event"] == "failed"
    assert req["headers"]["X-Syncdash-Delivery"] == ev["id"]
    assert "X-Syncdash-Signature" not in req["headers"]


def test_signature_verifies_with_the_documented_procedure(receiver: Receiver) -> None:
    ev = build_event("failed", "players", failed_run())
    out = notifier({"webhooks": [{"url": receiver.url, "secret": SECRET}]}).send(ev)
    assert out[0].ok
    req = receiver.requests[0]
    ts = req["headers"]["X-Syncdash-Timestamp"]
    sig = req["headers"]["X-Syncdash-Signature"]
    assert abs(int(ts) - time.time()) < 60
    # the receiver's side, from the docs: HMAC-SHA256(secret, timestamp + "." + raw body), hex, "sha256=" prefix
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + req["body"], hashlib.sha256).hexdigest()
    assert sig == f"sha256={expected}"
    assert sign(req["body"], SECRET, int(ts)) == expected
    assert verify(req["body"], SECRET, ts, sig)
    assert not verify(req["body"] + b" ", SECRET, ts, sig)  # tampered body
    assert not verify(req["body"], "wrong-secret", ts, sig)
    assert not verify(req["body"], SECRET, ts, sig, now=int(ts) + 3600)  # replayed an hour later
    assert SECRET not in json.dumps(req["headers"]) and SECRET.encode() not in req["body"]


def test_server_errors_are_retried_with_backoff(receiver: Receiver) -> None:
    receiver.respond(500, 500)
    sleeps: list[float] = []
    ev = build_event("failed", "players", failed_run())
    out = notifier({"webhooks": receiver.url, "backoff": 0.01}, sleeps).send(ev)
    assert out == [Delivery(receiver.url, True, 3, 200, None)]
    assert len(receiver.requests) == 3
    assert {r["body"] for r in receiver.requests} == {receiver.requests[0]["body"]}  # same body, same id
    assert sleeps == [0.01, 0.02]


def test_retry_after_is_honoured_and_capped(receiver: Receiver) -> None:
    receiver.respond((429, {"Retry-After": "3"}, b""), (503, {"Retry-After": "86400"}, b""))
    sleeps: list[float] = []
    out = notifier({"webhooks": receiver.url}, sleeps).send(build_event("failed", "players", failed_run()))
    assert out[0].ok and out[0].attempts == 3
    assert sleeps == [3.0, 60.0]


def test_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.respond((400, {}, b'{"error": "bad payload"}'))
    sleeps: list[float] = []
    out = notifier({"webhooks": receiver.url}, sleeps).send(build_event("failed", "players", failed_run()))
    assert len(receiver.requests) == 1 and sleeps == []
    [d] = out
    assert (d.ok, d.attempts, d.status) == (False, 1, 400)
    assert "HTTP 400" in (d.error or "") and "bad payload" in (d.error or "")


def test_gives_up_after_retries(receiver: Receiver) -> None:
    receiver.respond(*[502] * 10)
    out = notifier({"webhooks": receiver.url, "retries": 3}).send(build_event("failed", "players", failed_run()))
    assert len(receiver.requests) == 3
    assert (out[0].ok, out[0].attempts, out[0].status) == (False, 3, 502)
    assert "gave up after 3 tries" in (out[0].error or "")


def test_unreachable_url_fails_without_raising() -> None:
    port = free_port()
    cfg = {"webhooks": [{"url": f"http://user:pw-{SECRET}@127.0.0.1:{port}/hook?token=tok-{SECRET}",
                         "secret": SECRET, "headers": {"Authorization": f"Bearer {SECRET}"}, "timeout": 2}],
           "retries": 2}
    out = notifier(cfg, redact=lambda s: s.replace(f"tok-{SECRET}", "***")).send(
        build_event("failed", "players", failed_run()))
    [d] = out
    assert (d.ok, d.attempts, d.status) == (False, 2, None)
    assert "network error" in (d.error or "")
    assert SECRET not in (d.error or "") and SECRET not in d.target
    assert d.target == f"http://user:***@127.0.0.1:{port}/hook?token=***"


def test_secrets_are_masked_in_the_payload_and_errors(receiver: Receiver) -> None:
    receiver.respond((400, {}, f"rejected token {SECRET}".encode()))
    run = failed_run(error=f"GET https://api.example.com/?key={SECRET}: HTTP 401")
    out = notifier({"webhooks": receiver.url}, redact=lambda s: s.replace(SECRET, "***")).send(
        build_event("failed", "players", run))
    assert SECRET.encode() not in receiver.requests[0]["body"]
    assert json.loads(receiver.requests[0]["body"])["error"] == "GET https://api.example.com/?key=***: HTTP 401"
    assert SECRET not in (out[0].error or "") and "***" in (out[0].error or "")


def test_events_not_subscribed_are_not_sent(receiver: Receiver, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    n = notifier({"webhooks": receiver.url, "on": ["failed"], "command": f"touch {marker}"})
    assert n.send(build_event("partial", "players", failed_run(status="partial"))) == []
    assert n.send(build_event("overdue", "players", None)) == []
    assert receiver.requests == [] and not marker.exists()
    # the default subscription leaves out partial
    assert notifier({"webhooks": receiver.url}).send(build_event("partial", "players", failed_run())) == []
    assert receiver.requests == []


def test_recovered_run_notifies(receiver: Receiver) -> None:
    run = failed_run(status="succeeded", error=None, error_type=None)
    kind = event_for_run(run, previous_status="failed")
    assert kind == "recovered"
    out = notifier({"webhooks": receiver.url}).send(build_event(kind, "players", run))
    assert out[0].ok
    body = json.loads(receiver.requests[0]["body"])
    assert (body["event"], body["status"], body["run_id"], body["error"]) == ("recovered", "succeeded", 7, None)


# ---- the command ------------------------------------------------------------------------------------------


def test_command_gets_json_on_stdin_and_env(tmp_path: Path) -> None:
    out_file = tmp_path / "event.txt"
    cmd = (f"sh -c 'cat > {out_file}; echo >> {out_file}; "
           f"echo \"$SYNCDASH_EVENT|$SYNCDASH_SOURCE|$SYNCDASH_RUN_ID|$SYNCDASH_STATUS\" >> {out_file}'")
    ev = build_event("failed", "players", failed_run())
    out = notifier({"command": cmd}).send(ev)
    assert out == [Delivery("command", True, 1, 0, None)]
    body, env_line = out_file.read_text().rsplit("\n", 2)[:2]
    assert json.loads(body) == ev
    assert env_line == "failed|players|7|failed"


def test_command_for_overdue_has_empty_run_id(tmp_path: Path) -> None:
    out_file = tmp_path / "env.txt"
    cmd = f"echo \"$SYNCDASH_EVENT|$SYNCDASH_RUN_ID|$SYNCDASH_STATUS\" > {out_file}"
    assert notifier({"command": cmd}).send(build_event("overdue", "players", None))[0].ok
    assert out_file.read_text() == "overdue||\n"


def test_command_failure_and_timeout_are_reported(receiver: Receiver) -> None:
    n = notifier({"command": f"echo 'boom {SECRET}' >&2; exit 3", "webhooks": receiver.url},
                 redact=lambda s: s.replace(SECRET, "***"))
    hook, cmd = n.send(build_event("failed", "players", failed_run()))
    assert hook.ok  # one broken target does not stop the others
    assert (cmd.ok, cmd.status) == (False, 3)
    assert cmd.error == "command exited with 3: boom ***"

    slow = notifier({"command": "sleep 30"})
    slow.command_timeout = 0.3
    started = time.monotonic()
    [d] = slow.send(build_event("failed", "players", failed_run()))
    assert time.monotonic() - started < 10
    assert not d.ok and "timed out" in (d.error or "")
