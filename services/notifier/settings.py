"""Notifier settings (REFDESK_* environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.settings import CommonSettings


class NotifierSettings(CommonSettings):
    notifier_port: int = 8083
    notifier_group: str = "refdesk-notifier"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_s: float = 10.0
    mail_from: str = "TCC Library Ask Desk <askdesk@tccd.edu>"
    message_id_domain: str = "refdesk.tccd.edu"
    smtp_validate_certs: bool = Field(True, description="verify the relay's TLS certificate")
    smtp_ca_file: str | None = Field(
        None, description="PEM bundle to verify the relay's certificate with; unset: the system's"
    )
    sms_api_base_url: str | None = Field(
        None, description="Twilio API base; unset: write SMS to the outbox"
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    sms_from: str | None = None
    survey_url: str = "https://libanswers.tccd.edu/survey"
    max_attempts: int = Field(8, ge=1)
    crisis_max_attempts: int = Field(60, ge=1)
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    lease_s: float = Field(
        60.0, gt=0, description="how long a claimed notification stays with one worker"
    )
    poll_interval_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _production_has_sms(self) -> NotifierSettings:
        if self.env == "production" and self.sms_api_base_url and not (
            self.twilio_account_sid and self.twilio_auth_token and self.sms_from
        ):
            raise ValueError(
                "the SMS API needs REFDESK_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and REFDESK_SMS_FROM"
            )
        return self
