"""Request bodies of the API; the OpenAPI document is built from these too."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(_Body):
    username: StrictStr = Field(min_length=1, max_length=128)
    password: StrictStr = Field(min_length=1, max_length=1024)


class PresetCreate(_Body):
    name: StrictStr = Field(min_length=1, max_length=64)
    description: StrictStr | None = Field(None, max_length=1024)
    data: StrictStr = Field(min_length=2, max_length=32_768)
    output: StrictStr | None = Field(None, max_length=128)
    active: StrictBool | None = None


class PresetUpdate(_Body):
    name: StrictStr | None = Field(None, min_length=1, max_length=64)
    description: StrictStr | None = Field(None, max_length=1024)
    data: StrictStr | None = Field(None, min_length=2, max_length=32_768)
    output: StrictStr | None = Field(None, max_length=128)
    active: StrictBool | None = None
    # Clients echo what GET returned; an id in the body must match the path.
    id: int | None = None


class JobCreate(_Body):
    preset: StrictStr = Field(min_length=1, max_length=64)
    source: StrictStr = Field(min_length=1, max_length=1100)
    dest: StrictStr = Field(min_length=1, max_length=1100)
    # Told of this job's end (Standard Webhooks signed; the secret is in the answer, once).
    notify_url: StrictStr | None = Field(None, min_length=8, max_length=2048)
    parallel: Literal["auto", "off"] = "auto"
    priority: Literal["speed", "cost"] = "speed"
    # `{"metrics": ["vmaf", "psnr", "ssim"]}`: measured per rendition (judged by the jobs module,
    # whose 400 lists the allowed metrics); omitted, the preset's own `quality` applies.
    quality: dict[str, Any] | None = None


class UserUpdate(_Body):
    role: Literal["guest", "operator", "admin"] | None = None
    active: StrictBool | None = None
    # true: the user must change their password before anything else works
    force_password_reset: StrictBool | None = None


class PasswordChange(_Body):
    """With a Bearer token, the token's user; without one, `username` (the original body)."""

    username: StrictStr | None = Field(None, min_length=1, max_length=128)
    current_password: StrictStr = Field(min_length=1, max_length=1024)
    new_password: StrictStr = Field(max_length=1024)  # the password policy says what is too short
    verify_password: StrictStr | None = Field(None, max_length=1024)  # if sent, new_password again


class MachineCreate(_Body):
    provider: StrictStr = Field("digitalocean", max_length=32)
    region: StrictStr = Field(min_length=1, max_length=32)
    size: StrictStr = Field(min_length=1, max_length=64)
    count: int = Field(1, ge=1, le=10)


class UploadCreate(_Body):
    filename: StrictStr = Field(min_length=1, max_length=255)
    size: int = Field(ge=1)
    content_type: StrictStr = Field(min_length=3, max_length=100)


class UploadPart(_Body):
    part_number: int = Field(ge=1, le=10_000)
    etag: StrictStr = Field(min_length=1, max_length=128)


class UploadComplete(_Body):
    parts: list[UploadPart] | None = Field(None, max_length=10_000)


class WebhookCreate(_Body):
    url: StrictStr = Field(min_length=8, max_length=2048)
    events: list[StrictStr] | None = Field(None, max_length=8)
    active: StrictBool = True
    format: Literal["standard", "slack"] = "standard"


class WebhookUpdate(_Body):
    url: StrictStr | None = Field(None, min_length=8, max_length=2048)
    events: list[StrictStr] | None = Field(None, min_length=1, max_length=8)
    active: StrictBool | None = None
    format: Literal["standard", "slack"] | None = None


class SettingsUpdate(_Body):
    """Omitted fields stay as they are; a knob set to null returns to the stage default."""

    droplets_min: int | None = Field(None, ge=0, le=100)
    droplets_max: int | None = Field(None, ge=0, le=100)
    droplets_hourly_budget: float | None = Field(None, ge=0, le=10_000)
    droplet_region: StrictStr | None = Field(None, min_length=1, max_length=64)
    droplet_size: StrictStr | None = Field(None, min_length=1, max_length=64)
    default_presets: list[StrictStr] | None = Field(None, min_length=1, max_length=10)
    webhook_default_events: list[StrictStr] | None = Field(None, min_length=1, max_length=8)
    # Write-only: stored in SSM as SecureStrings, answered only as "set" / "not set".
    digitalocean_token: StrictStr | None = Field(None, max_length=256)
    slack_webhook_url: StrictStr | None = Field(None, max_length=512, pattern=r"^(https://\S+)?$")


class WorkerCredentialsRequest(_Body):
    droplet_id: StrictInt = Field(ge=1, le=10**15 - 1)
