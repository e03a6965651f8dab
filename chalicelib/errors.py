"""Domain errors. Each carries the HTTP status the API maps it to, in one place."""

from __future__ import annotations


class OpenEncoderError(Exception):
    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(OpenEncoderError):
    status = 400


class Unauthorized(OpenEncoderError):
    status = 401


class Forbidden(OpenEncoderError):
    status = 403


class NotFound(OpenEncoderError):
    status = 404


class Conflict(OpenEncoderError):
    status = 409


class Gone(OpenEncoderError):
    status = 410


class Unprocessable(OpenEncoderError):
    status = 422


class PayloadTooLarge(OpenEncoderError):
    status = 413


class TooManyRequests(OpenEncoderError):
    status = 429


class Unavailable(OpenEncoderError):
    status = 503
