"""The shipped pytest fixtures are hermetic (issue 20 item 5): two tests through ``twh_sandbox``
and ``twh_client`` on the session's one emulator, the first advancing its sandbox's clock, and
the second's time is untouched. Run in a pytest of their own (pytester), in this order."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)

PAIR = """
import datetime as dt

def test_a_advances_its_sandbox(twh_sandbox, twh_emulator):
    before = twh_sandbox.clock().now
    after = {advance}
    assert after - before >= dt.timedelta(days=2)
    item = twh_sandbox.client.create_item(sku="A", name="a")
    assert item.created_at >= after

def test_b_is_unaffected(twh_client, twh_emulator):
    emulator_now = twh_emulator.clock().now
    mine = twh_emulator.clock(sandbox=twh_client).now
    assert abs((mine - emulator_now).total_seconds()) < 60, (mine, emulator_now)
    item = twh_client.create_item(sku="B", name="b")
    assert abs((item.created_at - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60, item.created_at
"""


def test_advancing_one_tests_sandbox_leaves_the_next_tests_time_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pair=PAIR.format(advance="twh_sandbox.advance_clock(dt.timedelta(days=2))"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    # In this order: the second ran after the first had advanced its clock.
    result.stdout.re_match_lines([r".*test_a_advances_its_sandbox PASSED.*", r".*test_b_is_unaffected PASSED.*"])


def test_advancing_the_emulator_clock_is_seen_by_the_next_test(pytester: pytest.Pytester) -> None:
    """The control: the same pair, advancing every sandbox's clock, fails the second test (so the
    pair above shows the fixture's promise, not a check that cannot fail)."""
    pytester.makepyfile(test_pair=PAIR.format(advance="twh_emulator.advance_clock(dt.timedelta(days=2))"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines([r".*test_b_is_unaffected FAILED.*"])
