"""The ``lockbox`` command on a temporary SQLite file.

Most steps call the console-script entry point (``lockbox.cli.main:main``)
in-process with a patched ``sys.argv`` — the same code path as the installed
script, minus the interpreter start-up; a few run the real script as a
subprocess to prove the installed command, its exit codes and its output.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from lockbox.cli import main as cli_main
from lockbox.cli import output
from lockbox.cli.main import main

SCRIPT = Path(sys.executable).parent / "lockbox"
MAILBOX = "exchange/mailbox/alice@contoso.example"
ENGINEER = "erin@provider.example"
MANAGER = "mark@provider.example"
APPROVER = "paula@contoso.example"
AUDITOR = "audrey@contoso.example"
FOREIGN = "fred@fabrikam.example"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def __call__(self, *args: str, as_: str | None = None, expect: int | None = 0) -> Result:
        argv = ["lockbox", *(["--as", as_] if as_ else []), *args]
        self.capsys.readouterr()
        old = sys.argv
        sys.argv = argv
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = old
        captured = self.capsys.readouterr()
        result = Result(code, captured.out, captured.err)
        if expect is not None:
            assert code == expect, (argv, result)
        return result

    def json(self, *args: str, as_: str | None = None) -> Any:
        return self("--json", *args, as_=as_).json()

    def subprocess(self, *args: str, as_: str | None = None) -> Result:
        env = {**os.environ, "LOCKBOX_DATABASE_URL": self.url, "COLUMNS": "200"}
        env.pop("LOCKBOX_AS", None)
        cmd = [str(SCRIPT), *(["--as", as_] if as_ else []), *args]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        return Result(done.returncode, done.stdout, done.stderr)


@functools.cache
def _command() -> Any:
    return typer.main.get_command(cli_main.app)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOCKBOX_DATABASE_URL", url)
    monkeypatch.delenv("LOCKBOX_AS", raising=False)
    monkeypatch.delenv("LOCKBOX_SERVER", raising=False)
    monkeypatch.setattr(output.out, "width", 200)  # tables unfolded, as in a wide terminal
    # Typer rebuilds its click command tree on every call (~0.3 s); build it once.
    monkeypatch.setattr(cli_main, "app", _command())
    return Cli(url, capsys)


def bootstrap(cli: Cli, *, real_script: bool = False) -> None:
    if real_script:
        upgraded = cli.subprocess("db", "upgrade")  # the installed console script
        assert upgraded.code == 0, upgraded.err
    cli("db", "upgrade")  # idempotent
    for slug, name in (("contoso", "Contoso Ltd"), ("fabrikam", "Fabrikam Inc")):
        cli("tenant", "create", slug, "--name", name)
    cli("user", "create", ENGINEER, "--role", "engineer")
    cli("user", "create", MANAGER, "--role", "manager")
    cli("user", "create", APPROVER, "--role", "approver", "--tenant", "contoso")
    cli("user", "create", AUDITOR, "--role", "auditor", "--tenant", "contoso")
    cli("user", "create", FOREIGN, "--role", "approver", "--tenant", "fabrikam")


def open_and_submit(cli: Cli) -> tuple[str, str]:
    case = cli.json("case", "open", "--tenant", "contoso", "--title", "Sync broken", as_=ENGINEER)
    assert case["status"] == "open"
    req = cli.json(
        "request",
        "submit",
        "--tenant",
        "contoso",
        "--case",
        case["id"],
        "--resource",
        MAILBOX,
        "--level",
        "read",
        "--justification",
        "Inspect sync state",
        as_=ENGINEER,
    )
    assert req["state"] == "pending_review"
    assert req["id"].startswith("req_")
    return case["id"], req["id"]


def test_full_lifecycle_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    bootstrap(cli, real_script=True)
    tenants = cli.json("tenant", "list")
    assert [t["slug"] for t in tenants] == ["contoso", "fabrikam"]
    policy = cli.json("policy", "show", "contoso", as_=APPROVER)
    assert policy["enabled"] is True
    assert policy["approval_window_seconds"] == 12 * 3600
    case_id, req_id = open_and_submit(cli)

    reviewed = cli.json("request", "review", req_id, "--approve", "--comment", "ok", as_=MANAGER)
    assert reviewed["state"] == "pending_approval"
    approved = cli.json("request", "approve", req_id, "--comment", "for today", as_=APPROVER)
    assert approved["state"] == "approved"
    assert approved["access_deadline"]

    listed = cli.json("request", "list", "--state", "approved", as_=ENGINEER)
    assert [r["id"] for r in listed["items"]] == [req_id]
    assert listed["next_cursor"] is None
    assert cli.json("request", "list", "--state", "closed", as_=ENGINEER)["items"] == []
    # the foreign tenant's approver sees nothing
    assert cli.json("request", "list", as_=FOREIGN)["items"] == []

    table = cli("request", "list", as_=ENGINEER)
    assert "approved" in table.out
    shown = cli("request", "show", req_id, as_=ENGINEER)
    for text in ("approved", "request.submit", "request.approve", MAILBOX):
        assert text in shown.out

    closed = cli.json("request", "close", req_id, "--comment", "fixed", as_=ENGINEER)
    assert closed["state"] == "closed"
    shown_json = cli.json("request", "show", req_id, as_=ENGINEER)
    history = [h["operation"] for h in shown_json["history"]]
    assert history == [
        "request.submit",
        "request.review_approve",
        "request.approve",
        "request.close",
    ]
    assert cli.json("case", "close", case_id, as_=MANAGER)["status"] == "closed"
    assert cli.json("sweep") == {"expired": 0, "skipped": 0}

    # audit: verify, export as JSON Lines and CSV
    verified = cli("audit", "verify")
    assert verified.out.count("OK") == 2
    reports = cli.json("audit", "verify", "--tenant", "contoso", as_=AUDITOR)
    assert [r["ok"] for r in reports] == [True]
    jsonl = cli("audit", "export", "--tenant", "contoso", "--format", "jsonl", as_=AUDITOR)
    lines = [json.loads(line) for line in jsonl.out.splitlines()]
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["operation"] == "case.closed"
    assert {"request.submit", "request.close"} <= {r["operation"] for r in lines}
    out_file = tmp_path / "audit.csv"
    cli(
        "audit",
        "export",
        "--tenant",
        "contoso",
        "--format",
        "csv",
        "-o",
        str(out_file),
        as_=AUDITOR,
    )
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert len(rows) == len(lines)
    assert [int(r["seq"]) for r in rows] == [r["seq"] for r in lines]
    assert rows[0]["hash"] == lines[0]["hash"]
    # a tenant's audit log is not the engineer's to read, nor another tenant's
    cli("audit", "export", "--tenant", "contoso", as_=ENGINEER, expect=4)
    cli("audit", "export", "--tenant", "contoso", as_=FOREIGN, expect=3)


def _one_line_error(result: Result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err
    return lines[0]


def test_errors_are_one_line_with_documented_exit_codes(cli: Cli) -> None:
    bootstrap(cli)
    case_id, req_id = open_and_submit(cli)
    # 2: invalid input, naming the field
    bad = cli(
        "request",
        "submit",
        "--tenant",
        "contoso",
        "--case",
        case_id,
        "--resource",
        "exchange/*/x",
        "--justification",
        "x",
        as_=ENGINEER,
        expect=2,
    )
    assert "resources[0]" in _one_line_error(bad)
    assert "access_level" in _one_line_error(
        cli(
            "request",
            "submit",
            "--tenant",
            "contoso",
            "--case",
            case_id,
            "--resource",
            MAILBOX,
            "--level",
            "admin",
            "--justification",
            "x",
            as_=ENGINEER,
            expect=2,
        )
    )
    assert "approval_window" in _one_line_error(
        cli("tenant", "create", "tailspin", "--name", "T", "--approval-window", "1m", expect=2)
    )
    # 3: not found — a missing id and a foreign tenant's id answer alike
    missing = _one_line_error(
        cli("request", "show", "req_00000000000000000000000000", as_=FOREIGN, expect=3)
    )
    foreign = _one_line_error(cli("request", "show", req_id, as_=FOREIGN, expect=3))
    assert missing == foreign
    cli("--as", "nobody@nowhere.example", "tenant", "list", expect=3)
    # 4: not permitted (an approver cannot review; the requester cannot review their own)
    _one_line_error(cli("request", "review", req_id, "--approve", as_=APPROVER, expect=4))
    _one_line_error(cli("request", "review", req_id, "--approve", as_=ENGINEER, expect=4))
    _one_line_error(
        cli("user", "create", "x@provider.example", "--role", "manager", as_=ENGINEER, expect=4)
    )
    # 5: wrong state
    wrong = _one_line_error(cli("request", "approve", req_id, as_=APPROVER, expect=5))
    assert "pending_review" in wrong
    # 5: already exists (conflicting change)
    cli("tenant", "create", "contoso", "--name", "again", expect=5)
    # nothing above changed the request
    assert cli.json("request", "show", req_id, as_=ENGINEER)["version"] == 1
    # the real script: same one-line error and exit code
    real = cli.subprocess("request", "review", req_id, "--reject", as_=APPROVER)
    assert real.code == 4, real
    _one_line_error(real)
    real_json = cli.subprocess("--json", "request", "list", as_=ENGINEER)
    assert real_json.code == 0, real_json.err
    assert [r["id"] for r in json.loads(real_json.out)["items"]] == [req_id]


def test_lockbox_off_policy_via_cli(cli: Cli) -> None:
    bootstrap(cli)
    # only the tenant's own admin may change its policy; the operator holds provider rights only
    cli("policy", "set", "contoso", "--lockbox", "off", expect=4)
    cli("user", "create", "ines@contoso.example", "--role", "tenant_admin", "--tenant", "contoso")
    changed = cli.json(
        "policy",
        "set",
        "contoso",
        "--lockbox",
        "off",
        "--access-window",
        "2h",
        as_="ines@contoso.example",
    )
    assert changed["enabled"] is False
    assert changed["access_window_seconds"] == 7200
    _, req_id = open_and_submit(cli)
    reviewed = cli.json("request", "review", req_id, "--approve", as_=MANAGER)
    assert reviewed["state"] == "approved"
    assert reviewed["customer_step"] is False


def test_demo_exits_zero() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("LOCKBOX_DATABASE_URL", None)
    done = subprocess.run(
        [str(SCRIPT), "demo"], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
    assert "FAIL" not in done.stdout
    for word in ("approved", "expired", "access_ended", "closed"):
        assert word in done.stdout


def test_docs_lifecycle_command_matches_code(cli: Cli) -> None:
    from lockbox.domain.lifecycle import render_document

    assert cli("docs", "lifecycle").out == render_document().rstrip("\n") + "\n"


def test_request_list_since_takes_dates_and_durations(cli: Cli) -> None:
    """A date without a zone means UTC; a duration means that long ago; garbage is exit 2."""
    bootstrap(cli)
    _case, req = open_and_submit(cli)
    ids = lambda *extra: [  # noqa: E731
        r["id"] for r in cli.json("request", "list", *extra, as_=ENGINEER)["items"]
    ]
    assert ids("--since", "2000-01-01") == [req]
    assert ids("--since", "1h") == [req]
    assert ids("--since", "2999-01-01T00:00:00Z") == []
    result = cli("request", "list", "--since", "yesterday", as_=ENGINEER, expect=2)
    assert "since" in _one_line_error(result)


def test_history_and_audit_tables_name_people(cli: Cli) -> None:
    bootstrap(cli)
    _case, rid = open_and_submit(cli)
    cli("request", "review", rid, "--approve", "--comment", "ok", as_=MANAGER)
    cli("request", "approve", rid, "--comment", "today only", as_=APPROVER)
    shown = cli("request", "show", rid, as_=APPROVER).out
    assert "erin <erin@provider.example>" in shown  # requester and history, by name
    assert "mark <mark@provider.example>" in shown
    assert "paula <paula@contoso.example>" in shown
    listed = cli("audit", "list", "--tenant", "contoso", as_=AUDITOR).out
    assert "paula <paula@contoso.example>" in listed
    assert "Local operator" in listed  # the tenant was created by the operator
    data = cli.json("request", "show", rid, as_=APPROVER)
    assert data["people"][data["requester_id"]]["email"] == ENGINEER


def test_tenant_domains_services_and_password_resets_from_the_cli(cli: Cli) -> None:
    bootstrap(cli)
    cli("tenant", "domains", "contoso", "contoso.example", "mail.contoso.example")
    assert cli.json("tenant", "show", "contoso")["email_domains"] == [
        "contoso.example",
        "mail.contoso.example",
    ]
    cli("user", "create", "ines@contoso.example", "--role", "tenant_admin", "--tenant", "contoso")
    refused = cli(
        "user", "create", FOREIGN, "--role", "auditor", "--tenant", "contoso",
        as_="ines@contoso.example", expect=2,
    )  # fmt: skip
    assert "email" in refused.err
    started = cli.json("user", "reset-password", APPROVER, as_="ines@contoso.example")
    assert started["email"] == APPROVER and "code" not in json.dumps(started)
    cli("user", "create", "svc@provider.example", "--role", "resource_service")
    registered = cli.json(
        "user", "service", "svc@provider.example", "--tenant", "contoso", "--prefix", "exchange/",
        "--audience", "mailstore",
    )  # fmt: skip
    assert registered == {
        "user_id": registered["user_id"],
        "tenants": ["contoso"],
        "prefixes": ["exchange/"],
        "audience": "mailstore",
    }
    assert cli.json("user", "service", "svc@provider.example", "--show")["audience"] == "mailstore"
