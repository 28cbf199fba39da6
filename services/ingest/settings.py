"""Ingest settings (REFDESK_* environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from shared.settings import CommonSettings, refuse, secret_value, variable_of, weak_secret
from shared.webhooks import DEV_WEBHOOK_SECRET, standard_webhooks_secret, weak_webhook_key

# Development-only defaults, refused in production by the validator below (not real secrets).
DEV_TWILIO_TOKEN = "dev-twilio-auth-token"  # noqa: S105 - public dev placeholder, never deployed
DEV_MAILGUN_KEY = "dev-mailgun-signing-key"
EMAIL_BODY_BYTES = 64 * 1024 * 1024
"""Default limit of an email webhook's body: Mailgun accepts messages up to 25 MB and posts their
files decoded (at most about 25 MB) with the text as body-plain, stripped-text, body-html and
stripped-html, so 64 MiB takes any message whose text is under about 10 MB."""


PREVIOUS = (
    "ingest_previous_twilio_auth_token",
    "ingest_previous_mailgun_signing_key",
    "ingest_previous_webhook_secret",
)
"""The secrets being rotated out, each accepted beside the current one while it is set."""


class IngestSettings(CommonSettings):
    ingest_port: int = Field(8081, description="HTTP port")
    ingest_group: str = Field(
        "refdesk-ingest",
        description="consumer group (ingest reads closes to end SMS threads, and the emails "
        "refdesk sends patrons to thread their replies)",
    )
    public_base_url: str = Field(
        "",
        description="base URL providers call (Twilio signs it); unset: http://127.0.0.1 on "
        "REFDESK_INGEST_PORT, as a provider on this machine reaches ingest",
    )
    twilio_auth_token: SecretStr | None = Field(
        None, description="Twilio Auth Token: verifies X-Twilio-Signature"
    )
    mailgun_signing_key: SecretStr | None = Field(
        None, description="Mailgun HTTP webhook signing key"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Standard Webhooks secret (whsec_...)"
    )
    ingest_previous_twilio_auth_token: SecretStr | None = Field(
        None,
        description="while the Auth Token is rotated: the one it replaces, still accepted on "
        "Twilio's signatures (Twilio signs with the old one until the new is promoted)",
    )
    ingest_previous_mailgun_signing_key: SecretStr | None = Field(
        None, description="while the Mailgun signing key is rotated: the old one, still accepted"
    )
    ingest_previous_webhook_secret: SecretStr | None = Field(
        None,
        description="while the Standard Webhooks secret is rotated: the old one, still accepted "
        "(chat and MIME webhooks)",
    )
    ingest_twilio_shared_key: SecretStr | None = Field(
        None,
        description="secret of the Twilio Webhooks SharedKey, if a Webhooks Configuration signs "
        "the SMS URL with one (HMAC-SHA256); unset: such requests are refused",
    )
    ingest_twilio_url_fragment: str = Field(
        "",
        pattern=r"^[A-Za-z0-9=&,._-]*$",
        description="the connection overrides on the Twilio webhook URLs, without the # "
        "(rp=all&rc=3): signatures are checked with and without them",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="larger bodies get 413 before they are read (SMS, chat, admin)",
    )
    ingest_max_email_body_bytes: int = Field(
        EMAIL_BODY_BYTES,
        gt=0,
        description="the same for the two email endpoints: a Mailgun post carries a 25 MB "
        "message's files and its text up to four times",
    )
    body_read_timeout_s: float = Field(
        30.0,
        gt=0,
        description="a body not arrived whole this many seconds after its request started gets "
        "408 and its connection is closed (SMS, chat, admin): a client sending a byte at a time "
        "held its connection open for good",
    )
    ingest_email_body_read_timeout_s: float = Field(
        120.0,
        gt=0,
        description="the same for the two email endpoints, whose bodies may be 64 MiB (a "
        "refused Mailgun post is retried)",
    )
    publish_timeout_s: float = Field(
        4.0, gt=0, description="longest wait for the broker ack before answering 503"
    )
    store_timeout_s: float = Field(
        4.0,
        gt=0,
        description="longest wait for the message store's lookups (seen ids, text threads, "
        "Mailgun tokens) before answering 503: a database that stops answering holds no "
        "webhook longer",
    )
    retry_after_s: int = Field(5, description="Retry-After on a 503")
    dedupe_ttl_days: int = Field(
        7, ge=1, description="how long provider ids and Mailgun tokens are remembered"
    )
    sms_reply_window_h: float = Field(
        24.0, gt=0, description="a text joins its number's open conversation within this window"
    )
    signature_tolerance_s: int = Field(
        30_000,
        gt=0,
        description="Mailgun timestamp window; covers Mailgun's 8 h of retries (the token store "
        "refuses replays)",
    )
    blocklist_refresh_s: float = Field(
        5.0, gt=0, description="how soon another replica's blocklist change applies here"
    )
    admin_token: SecretStr | None = Field(
        None,
        description="bearer token for the blocklist admin API (unset: the API refuses everyone); "
        "32+ random characters in production",
    )

    @model_validator(mode="after")
    def _secrets(self) -> IngestSettings:
        dev = frozenset({DEV_TWILIO_TOKEN, DEV_MAILGUN_KEY, DEV_WEBHOOK_SECRET})
        # providers issue these; 16 characters is below any of their formats
        problems = [
            weak_secret(
                self.env,
                getattr(self, name),
                variable=variable_of(IngestSettings, name),
                dev_values=dev,
                min_length=16,
            )
            for name in ("twilio_auth_token", "mailgun_signing_key", "webhook_secret")
        ]
        problems += [
            weak_secret(self.env, value, variable=variable_of(IngestSettings, name), min_length=16)
            for name in PREVIOUS
            if (value := getattr(self, name)) is not None
        ]
        problems.append(
            standard_webhooks_secret(
                self.ingest_previous_webhook_secret,
                variable=variable_of(IngestSettings, "ingest_previous_webhook_secret"),
            )
        )
        if self.admin_token is not None:
            problems.append(weak_secret(self.env, self.admin_token, variable="REFDESK_ADMIN_TOKEN"))
        if self.ingest_twilio_shared_key is not None:
            problems.append(
                weak_secret(
                    self.env,
                    self.ingest_twilio_shared_key,
                    variable="REFDESK_INGEST_TWILIO_SHARED_KEY",
                    min_length=16,
                )
            )
        problems.append(
            standard_webhooks_secret(
                self.webhook_secret, variable=variable_of(IngestSettings, "webhook_secret")
            )
        )
        problems += [
            weak_webhook_key(
                self.env, getattr(self, name), variable=variable_of(IngestSettings, name)
            )
            for name in ("webhook_secret", "ingest_previous_webhook_secret")
        ]
        refuse(problems)  # every refused secret at once, not one a restart
        # a moved port moves the default: Twilio's signature over http://127.0.0.1:18201 was
        # checked against http://127.0.0.1:8081 and refused 403
        self.public_base_url = self.public_base_url or f"http://127.0.0.1:{self.ingest_port}"
        self.twilio_auth_token = self.twilio_auth_token or SecretStr(DEV_TWILIO_TOKEN)
        self.mailgun_signing_key = self.mailgun_signing_key or SecretStr(DEV_MAILGUN_KEY)
        self.webhook_secret = self.webhook_secret or SecretStr(DEV_WEBHOOK_SECRET)
        return self

    def twilio_shared_key(self) -> str | None:
        """The Twilio SharedKey secret in plain, if one is configured."""
        key = self.ingest_twilio_shared_key
        return key.get_secret_value() if key is not None else None

    def previous_secrets(self) -> tuple[str | None, str | None, str | None]:
        """The Twilio Auth Token, Mailgun signing key and Standard Webhooks secret being rotated
        out (each still accepted while set), in plain."""
        return (
            secret_value(self.ingest_previous_twilio_auth_token),
            secret_value(self.ingest_previous_mailgun_signing_key),
            secret_value(self.ingest_previous_webhook_secret),
        )

    def secrets(self) -> tuple[str, str, str]:
        """The Twilio Auth Token, Mailgun signing key and Standard Webhooks secret, in plain."""
        assert self.twilio_auth_token and self.mailgun_signing_key and self.webhook_secret
        return (
            self.twilio_auth_token.get_secret_value(),
            self.mailgun_signing_key.get_secret_value(),
            self.webhook_secret.get_secret_value(),
        )
