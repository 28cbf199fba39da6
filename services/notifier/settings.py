"""Notifier settings (REFDESK_* environment variables)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from services.notifier.mime import DOMAIN
from shared.settings import (
    CommonSettings,
    reads_as_placeholder,
    refuse,
    secret_value,
    weak_secret,
)
from shared.webhooks import standard_webhooks_secret, weak_webhook_key

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


CHAT_SECRETS = (
    ("chat_api_secret", "REFDESK_CHAT_API_SECRET"),
    ("chat_api_previous_secret", "REFDESK_CHAT_API_PREVIOUS_SECRET"),
)
DEV_TWILIO_TOKEN = "dev-twilio-auth-token"  # noqa: S105 - ingest's development token


class NotifierSettings(CommonSettings):
    notifier_port: int = Field(8083, description="HTTP port")
    notifier_group: str = Field(
        "refdesk-notifier", description="consumer group of refdesk.notifications"
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP relay")
    smtp_port: int = Field(1025, description="SMTP relay port")
    smtp_user: str | None = Field(None, description="SMTP login")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "none", description="none, starttls or tls (implicit)"
    )
    smtp_timeout_s: float = Field(
        10.0, gt=0, description="SMTP timeout to connect, greet, start TLS and log in"
    )
    smtp_send_timeout_s: float = Field(
        40.0,
        gt=0,
        description="SMTP timeout for each reply of a mail transaction (MAIL, RCPT, DATA and "
        "the reply after the message, which a relay that scans mail may take long to give: a "
        "timeout there sends the email again); with REFDESK_SMTP_TIMEOUT_S under "
        "REFDESK_LEASE_S",
    )
    smtp_unconfirmed_wait_s: float = Field(
        300.0,
        gt=0,
        description="an email the relay took without confirming it (no reply after the "
        "message, or the connection lost there) is sent again no sooner than this: each resend "
        "may be another copy for the patron",
    )
    smtp_unconfirmed_copies: int = Field(
        3,
        ge=1,
        description="copies of one email the relay may take without confirming any before "
        "refdesk gives it up, said as possibly arrived",
    )
    smtp_idle_timeout_s: float = Field(
        5.0,
        gt=0,
        description="an SMTP session unused this long is closed (QUIT); "
        "sessions are reused for successive emails until then",
    )
    mail_from: str = Field(
        "TCC Library Ask Desk <askdesk@tccd.edu>", description="From of every email"
    )
    message_id_domain: str = Field(
        "refdesk.tccd.edu",
        description="right side of derived Message-IDs (a domain name)",
        pattern=f"^{DOMAIN.pattern}$",
    )
    smtp_validate_certs: bool = Field(True, description="verify the relay's TLS certificate")
    smtp_ca_file: str | None = Field(
        None, description="PEM bundle to verify the relay's certificate with; unset: the system's"
    )
    sms_api_base_url: str | None = Field(
        None, description="Twilio API base; unset: write SMS to the outbox"
    )
    twilio_account_sid: str | None = Field(None, description="Twilio account SID (SMS API)")
    twilio_auth_token: SecretStr | None = Field(
        None, description="Twilio auth token (shared with ingest)"
    )
    sms_from: str | None = Field(
        None,
        description="the desk's SMS number, E.164 (a patron who wrote by WhatsApp is answered "
        "from whatsapp:<this number>)",
    )
    sms_status_callback_url: str | None = Field(
        None,
        description=(
            "where Twilio reports what became of each text (ingest's /webhooks/sms/status as"
            " Twilio reaches it); unset: texts show as sent, never as delivered or not"
        ),
        pattern=r"^https?://[^\s/?#@]+(/[^\s#]*)?$",
    )
    chat_api_url: str | None = Field(
        None,
        description=(
            "where messages into a chat are POSTed, Standard Webhooks signed (the chat "
            "platform's endpoint, or a bridge to it; README, Notifications); unset: written to "
            "the chat outbox folder"
        ),
        pattern=r"^https?://[^\s/?#@]+(/[^\s#]*)?$",
    )
    chat_api_secret: SecretStr | None = Field(
        None,
        description="the Standard Webhooks secret (whsec_...) that signs them; required with "
        "REFDESK_CHAT_API_URL",
    )
    chat_api_previous_secret: SecretStr | None = Field(
        None,
        description="while REFDESK_CHAT_API_SECRET is rotated: the secret being replaced; "
        "each message is signed with both, and the platform accepts either",
    )
    chat_api_timeout_s: float = Field(
        10.0,
        gt=0,
        description="how long a message into a chat waits for the platform's answer (a lost "
        "answer is sent again with the same webhook-id)",
    )
    survey_url: str = Field(
        "https://libanswers.tccd.edu/survey", description="rating/comment survey link"
    )
    console_url: str | None = Field(
        None,
        description=(
            "the desk console's address as staff reach it (https://refdesk.example.edu): crisis,"
            " re-escalation and safety-review emails link the conversation there; unset: no link"
        ),
        pattern=r"^https?://[^\s/?#@]+(/[^\s?#]*)?$",
    )
    max_attempts: int = Field(
        20,
        ge=1,
        description="attempts, at REFDESK_BACKOFF_MAX_S at most apart, before a notification "
        "that keeps failing transiently is dead-lettered, once REFDESK_RETRY_FOR_H has passed too",
    )
    crisis_max_attempts: int = Field(
        120, ge=1, description="the same for crisis alerts and resources (about an hour)"
    )
    retry_for_h: float = Field(
        48.0,
        ge=0,
        description="a notification failing transiently (the relay or provider down, a 4xx) is "
        "retried at least this long after it was asked for: past its attempts, every "
        "REFDESK_PATIENT_BACKOFF_S, and at once when a send on its lane succeeds again",
    )
    patient_backoff_s: float = Field(
        300.0,
        gt=0,
        description="the delay between attempts once a notification's attempts "
        "are used up and REFDESK_RETRY_FOR_H has not passed",
    )
    backoff_base_s: float = Field(1.0, gt=0, description="first retry delay; doubles per attempt")
    backoff_max_s: float = Field(30.0, gt=0, description="longest delay between attempts")
    lease_s: float = Field(
        60.0, gt=0, description="how long a claimed notification stays with one worker"
    )
    poll_interval_s: float = Field(1.0, gt=0, description="how often idle lanes look for due rows")
    pending_gauge_interval_s: float = Field(
        5.0, gt=0, description="how often the oldest-pending-age gauge is read from the ledger"
    )
    notifier_lane_concurrency: int = Field(
        16,
        ge=1,
        description="deliveries in flight at once per lane (email, SMS, chat), never two "
        "of one conversation; also the most SMTP sessions open at once, and the most messages "
        "a lane may send twice after a crash (docs/reliability.md)",
    )
    mail_reply_to: str | None = Field(
        None,
        description="Reply-To of every email (but the circulation managers' email about a "
        "patron who wrote by email: the patron's address, so their reply reaches the patron); "
        "unset: none, so replies go to From, which must then be ingest's inbound address (a "
        "patron's answer to a staff reply reaches the desk)",
    )

    smtp_allow_plain: bool = Field(
        False,
        description="production: accept an SMTP relay without TLS, without certificate checks "
        "or without login (a relay on a trusted local network); refused otherwise",
    )

    @model_validator(mode="after")
    def _a_send_ends_within_its_lease(self) -> NotifierSettings:
        # a delivery still waiting on the relay when its lease runs out is claimed again and
        # sent twice
        if self.chat_api_timeout_s >= self.lease_s:
            raise ValueError(
                "REFDESK_CHAT_API_TIMEOUT_S must be under REFDESK_LEASE_S (raise the lease with it)"
            )
        if self.smtp_timeout_s + self.smtp_send_timeout_s >= self.lease_s:
            raise ValueError(
                "REFDESK_SMTP_TIMEOUT_S + REFDESK_SMTP_SEND_TIMEOUT_S must be under "
                "REFDESK_LEASE_S (raise the lease with them)"
            )
        return self

    @model_validator(mode="after")
    def _chat_messages_are_signed(self) -> NotifierSettings:
        if not self.chat_api_url:
            return self
        if secret_value(self.chat_api_secret) is None:
            raise ValueError(
                "REFDESK_CHAT_API_URL needs REFDESK_CHAT_API_SECRET, the whsec_ secret that "
                "signs the messages"
            )
        refuse(
            [
                standard_webhooks_secret(getattr(self, field), variable=variable)
                for field, variable in CHAT_SECRETS
            ]
        )
        return self

    @model_validator(mode="after")
    def _production_sends_for_real(self) -> NotifierSettings:
        if self.env != "production":
            return self
        problems: list[str | None] = []
        if not (self.sms_api_base_url or "").startswith("https://"):
            problems.append(
                "production sends SMS through the Twilio API: set REFDESK_SMS_API_BASE_URL "
                "to its https:// base (unset, texts would only be written to a file)"
            )
        if not _ACCOUNT_SID.fullmatch(self.twilio_account_sid or ""):
            problems.append("REFDESK_TWILIO_ACCOUNT_SID must be a Twilio account SID (AC...)")
        if secret_value(self.twilio_auth_token) == DEV_TWILIO_TOKEN:
            problems.append("REFDESK_TWILIO_AUTH_TOKEN is the development token")
        else:
            problems.append(
                weak_secret(
                    self.env,
                    self.twilio_auth_token,
                    variable="REFDESK_TWILIO_AUTH_TOKEN",
                    min_length=16,
                )
            )
        if not _E164.fullmatch(self.sms_from or ""):
            problems.append("REFDESK_SMS_FROM must be the desk's number in E.164 (+1...)")
        callback = self.sms_status_callback_url
        if callback is not None and not callback.startswith("https://"):
            problems.append(
                "REFDESK_SMS_STATUS_CALLBACK_URL must be https:// in production: Twilio signs"
                " its reports, but sends them in the clear over http"
            )
        if self.chat_api_url is not None:
            if not self.chat_api_url.startswith("https://"):
                problems.append(
                    "REFDESK_CHAT_API_URL must be https:// in production: the messages are "
                    "students' records"
                )
            for field, variable in CHAT_SECRETS:
                value = getattr(self, field)
                if field == "chat_api_previous_secret" and value is None:
                    continue
                problems.append(
                    weak_secret(self.env, value, variable=variable)
                    or weak_webhook_key(self.env, value, variable=variable)
                )
        plain = self.smtp_tls == "none" or not self.smtp_validate_certs
        password = secret_value(self.smtp_password)
        anonymous = not (self.smtp_user and password)
        # the mail system sets its length and words: only a stand-in is refused
        if password and reads_as_placeholder(password, chosen=True):
            problems.append("REFDESK_SMTP_PASSWORD reads as a placeholder: set the relay's own")
        if (plain or anonymous) and not self.smtp_allow_plain:
            problems.append(
                "production mail needs REFDESK_SMTP_TLS=starttls or tls with certificate "
                "checks, and REFDESK_SMTP_USER and REFDESK_SMTP_PASSWORD; set "
                "REFDESK_SMTP_ALLOW_PLAIN=true only for a trusted relay that has neither"
            )
        refuse(problems)  # every problem at once, not one a restart
        return self
