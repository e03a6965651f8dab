"""A job's actual cost: GB-seconds and requests as Lambda bills them, USD at the configured
prices, and how the CLI shows it beside the plan's estimate."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chalicelib.jobs import cost
from openencoder_cli.views import cost_summary


def test_a_run_is_billed_its_seconds_times_its_memory_in_gb():
    assert cost.Usage(seconds=10.0, memory_mb=3008).gb_seconds == pytest.approx(29.375)
    assert cost.Usage(seconds=-1.0, memory_mb=512).gb_seconds == 0.0


def test_the_memory_is_the_lambda_contexts_or_else_the_hosts_setting(monkeypatch):
    assert cost.memory_mb(SimpleNamespace(memory_limit_in_mb="1769")) == 1769
    monkeypatch.setenv("OE_MEMORY_MB", "2048")
    assert cost.memory_mb(None) == 2048
    assert cost.memory_mb(SimpleNamespace()) == 2048


def test_the_actual_cost_is_priced_at_the_configured_prices(monkeypatch):
    assert cost.actual(None, None) == {"gb_seconds": 0.0, "requests": 0, "usd": 0.0}
    monkeypatch.setenv("OE_LAMBDA_USD_PER_GB_SECOND", "0.00001")
    monkeypatch.setenv("OE_LAMBDA_USD_PER_REQUEST", "0.001")
    assert cost.actual(1000, 3) == {"gb_seconds": 1000.0, "requests": 3, "usd": 0.013}


def test_the_cli_shows_the_estimate_beside_what_was_billed():
    job = {"plan": {"estimate": {"seconds": 40, "cost_usd": 0.0123}},
           "cost": {"estimate": {"usd": 0.0123},
                    "actual": {"gb_seconds": 612.5, "requests": 41, "usd": 0.0102}}}  # fmt: skip
    assert cost_summary(job) == "estimate $0.0123, actual $0.0102 (612.5 GB-s, 41 requests)"
    # An older server: the plan's estimate alone.
    assert cost_summary({"plan": {"estimate": {"cost_usd": 0.5}}}) == "estimate $0.5000"
    assert cost_summary({}) == ""
