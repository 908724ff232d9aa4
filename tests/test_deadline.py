"""A fetch's deadline: what time is left, and when none is."""

import time

from bot.sources.base import Deadline


def test_a_deadline_in_the_future_has_time_left_and_has_not_expired():
    deadline = Deadline.after(60)
    assert 59 < deadline.remaining() <= 60
    assert not deadline.expired()


def test_a_spent_deadline_has_no_time_left_never_negative_and_has_expired():
    for deadline in (Deadline.after(0), Deadline(time.monotonic() - 5)):
        assert deadline.remaining() == 0.0
        assert deadline.expired()


def test_a_deadline_with_under_a_second_left_has_not_expired():
    deadline = Deadline.after(0.9)
    assert 0 < deadline.remaining() <= 0.9
    assert not deadline.expired()
