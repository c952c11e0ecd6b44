"""The matching policy on its own: plain data in, decisions out."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hub.matching.policy import (
    FREE_HELPER_WAIT_S,
    HelperSkills,
    WaitingRequest,
    choose_helper,
    estimate_wait_s,
    plan_offers,
    queue_positions,
    told_position,
    told_wait_s,
)
from hub.matching.service import HelpAtHand, changed_places

T0 = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)


def helper(
    id: int, idle_min: int = 0, subjects=(1,), grades=(8, 10), languages=("da",)
) -> HelperSkills:
    return HelperSkills(
        id,
        frozenset(subjects),
        grades[0],
        grades[1],
        frozenset(languages),
        T0 + timedelta(minutes=idle_min),
    )


def request(
    id: int,
    minute: int = 0,
    subject: int = 1,
    grade: int = 9,
    language=None,
    previous=None,
    declined=(),
) -> WaitingRequest:
    return WaitingRequest(
        id,
        100 + id,
        subject,
        grade,
        language,
        T0 + timedelta(minutes=minute),
        previous,
        frozenset(declined),
    )


def test_the_helper_idle_longest_is_offered_first():
    assert choose_helper(request(1), [helper(1, idle_min=5), helper(2, idle_min=1)]).id == 2


def test_a_returning_student_gets_their_previous_helper_first():
    assert (
        choose_helper(request(1, previous=1), [helper(1, idle_min=5), helper(2, idle_min=1)]).id
        == 1
    )


def test_a_helper_who_declined_is_not_asked_again():
    assert choose_helper(request(1, declined={2}), [helper(1, idle_min=5), helper(2)]).id == 1
    assert choose_helper(request(1, declined={1}), [helper(1)]) is None


def test_only_helpers_with_the_subject_grade_and_language_are_offered():
    helpers = [
        helper(1, subjects=(2,)),
        helper(2, grades=(8, 8)),
        helper(3, languages=("da",)),
        helper(4, languages=("ar", "da")),
    ]
    assert choose_helper(request(1, subject=1, grade=9, language="ar"), helpers).id == 4
    assert choose_helper(request(1, subject=3), helpers) is None


def test_oldest_request_is_served_first_and_each_helper_gets_one_offer():
    plan = plan_offers(
        [request(2, minute=5), request(1, minute=1), request(3, minute=9)],
        [helper(1), helper(2, idle_min=1)],
    )
    assert plan == [(1, 1), (2, 2)]


def test_a_request_nobody_can_take_does_not_block_the_ones_behind_it():
    plan = plan_offers([request(1, minute=0, subject=9), request(2, minute=1)], [helper(1)])
    assert plan == [(2, 1)]


def test_queue_places_count_within_a_subject_in_arrival_order():
    places = queue_positions(  # the queue, oldest first
        [request(2, minute=1, subject=2), request(3, minute=2), request(1, minute=3)]
    )
    assert places == {3: 1, 1: 2, 2: 1}


def test_wait_is_unknown_when_nobody_on_duty_can_help():
    assert estimate_wait_s(1, free_able=0, on_duty_able=0, typical_session_s=1200) is None


def test_wait_is_short_while_a_free_helper_can_take_it():
    assert (
        estimate_wait_s(2, free_able=2, on_duty_able=3, typical_session_s=1200)
        == FREE_HELPER_WAIT_S
    )


def test_wait_grows_with_rounds_of_sessions():
    first_round = estimate_wait_s(3, free_able=0, on_duty_able=3, typical_session_s=1200)
    second_round = estimate_wait_s(4, free_able=0, on_duty_able=3, typical_session_s=1200)
    assert first_round == 11 * 60  # 30 s + half a session of 20 minutes, to the nearest minute
    assert second_round == 31 * 60  # and a whole session more


def test_wait_is_told_in_whole_minutes_and_in_five_minute_steps_beyond_an_hour():
    assert told_wait_s(FREE_HELPER_WAIT_S) == FREE_HELPER_WAIT_S
    assert [told_wait_s(s) for s in (60, 89, 90, 629, 3569)] == [60, 60, 120, 600, 3540]
    assert [told_wait_s(s) for s in (3570, 3749, 3750, 8000)] == [3600, 3600, 3900, 8100]


def test_places_far_back_are_told_rounded_up_in_growing_steps():
    places = (1, 20, 21, 30, 31, 100, 101, 150, 151, 500, 501, 1234)
    assert [told_position(p) for p in places] == [
        1,
        20,
        30,
        30,
        40,
        100,
        150,
        150,
        200,
        500,
        600,
        1300,
    ]


def test_a_slightly_longer_typical_session_does_not_change_the_wait_told():
    waits = {
        estimate_wait_s(6, free_able=0, on_duty_able=3, typical_session_s=typical)
        for typical in (1290, 1300, 1310)
    }
    assert waits == {33 * 60}  # 30 s + 1.5 sessions of about 21.7 minutes


def test_when_the_head_of_a_long_queue_moves_only_students_whose_told_place_changes_hear_it():
    queue = [
        SimpleNamespace(
            id=n,
            student_id=n,
            subject_id=1,
            grade=9,
            language_code=None,
            told_position=told_position(n),
            told_eta_s=None,
        )
        for n in range(1, 301)
    ]
    nobody_on_duty = HelpAtHand(on_duty=[], typical_session_s=1200)
    told = changed_places(queue[1:], nobody_on_duty, pause=lambda: None)  # the first was matched
    assert [p.position for p in told] == [*range(1, 21), *range(30, 101, 10), 150, 200, 250]
    assert [p.request_id for p in told][:2] == [2, 3]
