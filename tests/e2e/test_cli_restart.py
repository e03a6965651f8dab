"""The CLI's zero-config login survives `make run` being stopped and started again.

Each start writes `.local/stack.json` (mode 0600) with a fresh admin token signed with
the stack's own key; only the first start, which made the admin, knows its password.
"""

from __future__ import annotations

import json
import stat

import pytest

from ops.local_stack import running
from tests.e2e.test_cli import Cli, ok
from tests.polling import wait_until

pytestmark = pytest.mark.slow
QUICK = {"OE_BCRYPT_ROUNDS": "4", "ADMIN_USERNAME": "boss"}


def stack_json(checkout) -> dict:
    path = checkout / ".local" / "stack.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "null" not in text, text  # nothing is written as unknown
    return json.loads(text)


def test_after_a_restart_jobs_list_works_with_no_flags(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / ".local").mkdir(parents=True)
    with (
        (checkout / "first.log").open("w") as log,
        running(checkout / ".local", output=log, **QUICK) as (_, facts),
    ):
        first = stack_json(checkout)
        password = first["admin"]["password"]
        assert len(password) >= 16 and first["admin_token"]["token"].count(".") == 2
        used = Cli({"facts": facts, "checkout": checkout}, tmp_path / "used")
        assert "0 jobs" in ok(used("jobs", "list"))
    assert password in (checkout / "first.log").read_text()  # printed once, on the first start

    # Short-lived tokens, so the stack renews the one in stack.json while the test watches.
    quick_tokens = {**QUICK, "OE_TOKEN_TTL_SECONDS": "30"}
    with (
        (checkout / "second.log").open("w") as log,
        running(checkout / ".local", output=log, **quick_tokens) as (_, facts),
    ):
        again = stack_json(checkout)
        assert again["admin"] == {"username": "boss"}  # the password is not known now
        assert again["admin_token"]["token"] != first["admin_token"]["token"]
        # A CLI that never logged in, and one that kept the first run's login, both just work.
        fresh = Cli({"facts": facts, "checkout": checkout}, tmp_path / "fresh")
        assert "0 jobs" in ok(fresh("jobs", "list"))
        assert "0 jobs" in ok(used("jobs", "list"))
        renewed = wait_until(
            lambda: (t := stack_json(checkout)["admin_token"]) != again["admin_token"] and t,
            40,
            "the stack to renew the admin token in stack.json",
        )
        assert renewed["token"].count(".") == 2
        late = Cli({"facts": facts, "checkout": checkout}, tmp_path / "late")
        assert "0 jobs" in ok(late("jobs", "list"))
    assert password not in (checkout / "second.log").read_text()
