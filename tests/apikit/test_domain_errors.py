"""A domain error is written in the error envelope by the exception handler, wherever it is raised:
its status, code, type and field, and when to retry."""

from __future__ import annotations

import redis

from apikit.exceptions import exception_handler
from infra.errors import DomainError


class NameTaken(DomainError):
    status = 409
    code = "name_taken"
    attr = "name"
    default_detail = "Another insight has this name."


class LaneFull(DomainError):
    status = 429
    code = "lane_full"
    type = "throttled_error"

    def __init__(self) -> None:
        super().__init__("No turn came in time.")
        self.retry_after = 2.5


def test_a_domain_error_answers_its_status_code_type_and_field_in_the_envelope():
    response = exception_handler(NameTaken(), {})

    assert response.status_code == 409
    assert response.data == {
        "type": "invalid_request",
        "code": "name_taken",
        "detail": "Another insight has this name.",
        "attr": "name",
    }


def test_a_domain_error_may_carry_its_own_code_and_message():
    response = exception_handler(
        DomainError("dateRange.date_to is before date_from.", code="invalid_date_range"), {}
    )

    assert (response.status_code, response.data["code"], response.data["detail"], response.data["attr"]) == (
        400,
        "invalid_date_range",
        "dateRange.date_to is before date_from.",
        None,
    )


def test_a_throttling_domain_error_says_when_to_retry():
    response = exception_handler(LaneFull(), {})

    assert (response.status_code, response.data["type"], response.data["code"]) == (
        429,
        "throttled_error",
        "lane_full",
    )
    assert response["Retry-After"] == "3"


class WorkersGone(DomainError):
    status = 503
    code = "workers_gone"
    type = "server_error"


def test_every_503_says_when_to_retry_whether_or_not_its_error_knows():
    knows = WorkersGone()
    knows.retry_after = 7
    responses = [exception_handler(error, {}) for error in (knows, WorkersGone())]

    assert [(r.status_code, r.data["code"], r["Retry-After"]) for r in responses] == [
        (503, "workers_gone", "7"),
        (503, "workers_gone", "2"),
    ]


def test_a_redis_that_times_out_answers_503_service_unavailable_never_500():
    response = exception_handler(redis.exceptions.TimeoutError("Timeout reading from socket"), {})

    assert (response.status_code, response.data["code"], response["Retry-After"]) == (
        503,
        "service_unavailable",
        "2",
    )
