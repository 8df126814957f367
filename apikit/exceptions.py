"""The one error envelope: `{"type", "code", "detail", "attr"}` for every error the service returns.

DRF errors are formatted by drf-exceptions-hog (the library PostHog uses, so the wire format is the
same). The service's own errors (infra.errors.DomainError) become HTTP here and nowhere else.
Database and Redis failures are mapped to 400/503 rather than a bare 500, and Django-level errors
(unknown URL, server error) use the same envelope through the `handler*` views. Every 503 says when to
retry (`Retry-After`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import redis
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from exceptions_hog import exception_handler as hog_exception_handler
from rest_framework import exceptions, status
from rest_framework.response import Response

from infra.errors import DomainError

logger = logging.getLogger(__name__)


# Seconds a client should wait before retrying a 503 that does not say itself.
RETRY_UNAVAILABLE_SECONDS = 2


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable; try again shortly."
    default_code = "service_unavailable"
    default_type = "server_error"
    wait = RETRY_UNAVAILABLE_SECONDS


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"
    default_type = "invalid_request"


class InvalidInput(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "A value in the request is out of range or not representable."
    default_code = "invalid_input"
    default_type = "validation_error"


def exception_reporter(exc: BaseException, context: Mapping[str, object] | None = None) -> None:
    """Log what is not an ordinary client error, with its traceback (hooked into exceptions_hog)."""
    if not isinstance(exc, exceptions.APIException) or isinstance(exc, ServiceUnavailable):
        logger.error("Unhandled error while serving a request", exc_info=exc)


def exception_handler(exc: BaseException, context: Mapping[str, object] | None = None) -> Response | None:
    if isinstance(exc, DomainError):  # the one place a domain error becomes HTTP
        if exc.status >= 500:
            logger.error("Service error while serving a request: %s", exc.detail)
        exc = as_api_exception(exc)
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )
    elif isinstance(exc, DataError):
        # The database refused a value (e.g. a NUL character) that validation let through.
        logger.warning("DataError turned into a 400: %s", exc)
        exc = InvalidInput()
    elif isinstance(exc, OperationalError | InterfaceError | redis.exceptions.RedisError):
        # Unreachable, or too slow to answer (a Redis timeout): the service, not the request, failed.
        exception_reporter(exc, context)
        exc = ServiceUnavailable()
    response = hog_exception_handler(exc, context)
    if response is None:
        return None
    # exceptions_hog drops the headers DRF's own handler would set.
    if auth_header := getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = auth_header
    wait: float | None = getattr(exc, "wait", None)  # Throttled's, ServiceUnavailable's, a DomainError's
    if wait is None and response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        wait = RETRY_UNAVAILABLE_SECONDS
    if wait is not None and response.status_code in (429, 503):
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


# A domain error as DRF's exception: its envelope type is `exception_type`, read by drf-exceptions-hog.
class _DomainFieldError(exceptions.ValidationError):
    exception_type: str


class _DomainThrottled(exceptions.Throttled):
    exception_type: str


class _DomainError(exceptions.APIException):
    exception_type: str
    wait: float | None = None  # read above for Retry-After


def as_api_exception(error: DomainError) -> exceptions.APIException:
    """The DRF exception a domain error's envelope is written from."""
    api_error: _DomainFieldError | _DomainThrottled | _DomainError
    if error.attr is not None:  # drf-exceptions-hog names a field of a ValidationError only
        api_error = _DomainFieldError({error.attr: [error.detail]}, code=error.code)
    elif error.status == 429:
        api_error = _DomainThrottled(wait=error.retry_after)
        api_error.detail = exceptions.ErrorDetail(error.detail, code=error.code)
    else:
        api_error = _DomainError(error.detail, code=error.code)
        api_error.wait = error.retry_after
    api_error.status_code = error.status
    api_error.exception_type = error.type
    return api_error


def _envelope(status_code: int, type_: str, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"type": type_, "code": code, "detail": detail, "attr": None}, status=status_code)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _envelope(400, "invalid_request", "bad_request", "The request could not be understood.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _envelope(403, "authentication_error", "permission_denied", "You do not have permission.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _envelope(404, "invalid_request", "not_found", "Not found.")


def handler500(request: HttpRequest) -> JsonResponse:
    return _envelope(500, "server_error", "error", "A server error occurred.")
