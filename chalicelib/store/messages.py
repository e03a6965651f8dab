"""Queue messages: typed, built and parsed here and nowhere else.

A message only says "job N, attempt K is ready"; the job item is the truth.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class MalformedMessage(ValueError):
    """A queue message this code cannot read (it is dropped, with a log line)."""


class JobMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["job"] = "job"
    job_id: int = Field(ge=1)
    attempt: int = Field(ge=1)


class TaskMessage(BaseModel):
    """One task of a job's graph is ready: `task` names it ("encode-0003-720p", "assemble",
    "package-720p", or "encode-0003" for every rendition of a chunk at once)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["task"] = "task"
    job_id: int = Field(ge=1)
    attempt: int = Field(ge=1)
    task: str = Field(pattern=r"^[a-z]+(-\d{4})?(-[A-Za-z0-9._%-]{1,128})?$", max_length=160)


# Every message kind the encode queues carry, told apart by "kind" (absent: a job).
Message = JobMessage | TaskMessage


def dump(message: Message) -> str:
    # Job messages keep the wire format of those already in flight: no "kind".
    exclude = {"kind"} if isinstance(message, JobMessage) else None
    return message.model_dump_json(exclude=exclude)


def parse(body: str) -> Message:
    """The message in an SQS body, or MalformedMessage."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        if data.get("kind") == "task":
            return TaskMessage.model_validate(data)
        return JobMessage.model_validate(data)
    except (ValueError, TypeError, ValidationError) as exc:
        raise MalformedMessage(f"unreadable message: {body[:200]!r}") from exc
