"""Configuration, read in one place from the environment or a `.env` file and validated at start."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ConfigError(Exception):
    """Configuration that cannot work; the message is one line fit for an operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field("sqlite:///./evidence.db", validation_alias="DATABASE_URL")
    evidence_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["evidence@localhost"], validation_alias="EVIDENCE_ADDRESSES"
    )
    smtp_host: str = Field("127.0.0.1", validation_alias="EVIDENCE_SMTP_HOST")
    smtp_port: int = Field(8025, ge=0, le=65535, validation_alias="EVIDENCE_SMTP_PORT")
    smtp_hostname: str | None = Field(None, validation_alias="EVIDENCE_SMTP_HOSTNAME")
    smtp_max_connections: int = Field(100, ge=1, validation_alias="EVIDENCE_SMTP_MAX_CONNECTIONS")
    smtp_tls_cert: Path | None = Field(None, validation_alias="EVIDENCE_SMTP_TLS_CERT")
    smtp_tls_key: Path | None = Field(None, validation_alias="EVIDENCE_SMTP_TLS_KEY")
    relay_url: str | None = Field(None, validation_alias="EVIDENCE_RELAY_URL")
    from_address: str | None = Field(None, validation_alias="EVIDENCE_FROM_ADDRESS")
    reference_prefix: str = Field("EV", pattern=r"^[A-Z][A-Z0-9]{0,9}$", validation_alias="EVIDENCE_REFERENCE_PREFIX")
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1024, validation_alias="EVIDENCE_MAX_MESSAGE_BYTES")
    acks_per_sender_per_hour: int = Field(3, ge=0, validation_alias="EVIDENCE_ACKS_PER_SENDER_PER_HOUR")
    inquiry_title: str = Field(
        "Call for evidence: public-sector outsourcing and shared services",
        validation_alias="EVIDENCE_INQUIRY_TITLE",
    )
    log_level: str = Field("INFO", validation_alias="EVIDENCE_LOG_LEVEL")
    # "json": one JSON object per line (time, level, logger, message, reference, door) for a log shipper.
    log_format: Literal["text", "json"] = Field("text", validation_alias="EVIDENCE_LOG_FORMAT")
    # When set, GET /metrics wants "Authorization: Bearer <token>" (bot.runtime.metrics).
    metrics_token: str | None = Field(None, validation_alias="EVIDENCE_METRICS_TOKEN")
    inquiry_deadline: date | None = Field(None, validation_alias="EVIDENCE_INQUIRY_DEADLINE")
    retry_base_seconds: float = Field(30.0, gt=0, validation_alias="EVIDENCE_RETRY_BASE_SECONDS")
    # The web side: Slack's HTTP endpoint (/slack/events) and /healthz.
    web_host: str = Field("127.0.0.1", validation_alias="EVIDENCE_WEB_HOST")
    web_port: int = Field(3000, ge=0, le=65535, validation_alias="PORT")
    slack_bot_token: str | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    review_channel: str | None = Field(None, validation_alias="EVIDENCE_REVIEW_CHANNEL")
    reviewers: Annotated[list[str], NoDecode] = Field(default_factory=list, validation_alias="EVIDENCE_REVIEWERS")
    slack_attachment_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1, validation_alias="EVIDENCE_SLACK_ATTACHMENT_MAX_BYTES"
    )
    # The SMTP door cannot be held shut by one client (handlers.smtp): per-client caps, shorter
    # idle time under stress, a message rate. Trusted clients (your relay) are exempt.
    smtp_max_connections_per_client: int = Field(
        10, ge=1, validation_alias="EVIDENCE_SMTP_MAX_CONNECTIONS_PER_CLIENT"
    )
    smtp_idle_seconds: float = Field(300.0, gt=0, validation_alias="EVIDENCE_SMTP_IDLE_SECONDS")
    smtp_messages_per_client_per_minute: int = Field(
        120, ge=1, validation_alias="EVIDENCE_SMTP_MESSAGES_PER_CLIENT_PER_MINUTE"
    )
    smtp_trusted_clients: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list, validation_alias="EVIDENCE_SMTP_TRUSTED_CLIENTS"
    )
    # Inbound mail over HTTP (handlers.webhooks): each endpoint is on only when its secret is set.
    mailgun_signing_key: str | None = Field(None, validation_alias="MAILGUN_WEBHOOK_SIGNING_KEY")
    inbound_user: str | None = Field(None, validation_alias="EVIDENCE_INBOUND_USER")
    inbound_password: str | None = Field(None, validation_alias="EVIDENCE_INBOUND_PASSWORD")
    inbound_secret: str | None = Field(None, validation_alias="EVIDENCE_INBOUND_SECRET")
    # IMAP (handlers.imap): read an existing mailbox.
    imap_url: str | None = Field(None, validation_alias="EVIDENCE_IMAP_URL")
    imap_password: str | None = Field(None, validation_alias="EVIDENCE_IMAP_PASSWORD")
    imap_oauth2_token_command: str | None = Field(None, validation_alias="EVIDENCE_IMAP_OAUTH2_TOKEN_COMMAND")
    imap_done_folder: str = Field("Processed", min_length=1, validation_alias="EVIDENCE_IMAP_DONE_FOLDER")
    imap_poll_seconds: float = Field(60.0, gt=0, validation_alias="EVIDENCE_IMAP_POLL_SECONDS")
    # Who really sent it (bot.sender_check): the resolvers for SPF/DKIM/DMARC look-ups, as
    # (ip, port) pairs (empty: the system's), and the authserv-ids whose Authentication-Results
    # headers are believed instead of checking again (Microsoft 365, Gmail, your relay).
    dns_servers: Annotated[list[tuple[str, int]], NoDecode] = Field(
        default_factory=list, validation_alias="EVIDENCE_DNS_SERVERS"
    )
    trusted_authserv_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="EVIDENCE_TRUSTED_AUTHSERV_IDS"
    )

    @field_validator("evidence_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, v: object) -> object:
        if isinstance(v, str):
            v = [a.strip() for a in v.split(",") if a.strip()]
        if isinstance(v, list):
            if not v:
                raise ValueError("needs at least one address")
            for a in v:
                if "@" not in a or a.startswith("@") or a.endswith("@") or " " in a:
                    raise ValueError(f"{a!r} is not an e-mail address")
            return [a.lower() for a in v]
        return v

    @field_validator("reviewers", mode="before")
    @classmethod
    def _split_reviewers(cls, v: object) -> object:
        if isinstance(v, str):
            v = [a.strip() for a in v.split(",") if a.strip()]
        if isinstance(v, list):
            for a in v:
                if not (len(a) > 1 and a[0] in "UWS" and a.isalnum() and a.isupper()):
                    raise ValueError(f"{a!r} is not a Slack user (U…) or user-group (S…) ID")
        return v

    @field_validator("smtp_trusted_clients", mode="before")
    @classmethod
    def _split_networks(cls, v: object) -> object:
        if isinstance(v, str):
            v = [a.strip() for a in v.split(",") if a.strip()]
        if isinstance(v, list):
            nets: list[IPv4Network | IPv6Network] = []
            for a in v:
                try:
                    nets.append(ip_network(a, strict=False) if isinstance(a, str) else a)
                except ValueError:
                    raise ValueError(f"{a!r} is not an IP address or network such as 192.0.2.0/24") from None
            return nets
        return v

    @field_validator("dns_servers", mode="before")
    @classmethod
    def _split_dns_servers(cls, v: object) -> object:
        if isinstance(v, str):
            v = [a.strip() for a in v.split(",") if a.strip()]
        if isinstance(v, list):
            return [_dns_server(a) if isinstance(a, str) else a for a in v]
        return v

    @field_validator("trusted_authserv_ids", mode="before")
    @classmethod
    def _split_authserv_ids(cls, v: object) -> object:
        if isinstance(v, str):
            v = [a.strip().lower() for a in v.split(",") if a.strip()]
        if isinstance(v, list):
            for a in v:
                if not isinstance(a, str) or not a or any(c.isspace() or c in ";()" for c in a):
                    raise ValueError(f"{a!r} is not an authserv-id such as mx.example.org")
        return v

    @field_validator("imap_url")
    @classmethod
    def _check_imap_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        u = urlsplit(v)
        if u.scheme not in ("imap", "imaps") or not u.hostname or not u.username:
            raise ValueError("must look like imaps://user@host:993/INBOX (or imap://user@host:143/INBOX)")
        return v

    @field_validator("slack_api_url")
    @classmethod
    def _check_api_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return v if v.endswith("/") else v + "/"

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, v: str) -> str:
        if v.startswith("postgres://"):
            v = "postgresql+psycopg://" + v[len("postgres://"):]
        elif v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://"):]
        if not v.startswith(("sqlite:///", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return v

    @field_validator("relay_url")
    @classmethod
    def _check_relay(cls, v: str | None) -> str | None:
        if not v:
            return None
        u = urlsplit(v)
        if u.scheme not in ("smtp", "smtps") or not u.hostname:
            raise ValueError("must look like smtp://host:port (or smtps://)")
        return v

    @property
    def sender_address(self) -> str:
        """The From: of what the service sends: configured, or the first published address."""
        return self.from_address or self.evidence_addresses[0]

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def imap_enabled(self) -> bool:
        return self.imap_url is not None

    def is_trusted_client(self, ip: str) -> bool:
        """Loopback's own relay (127.0.0.1, ::1) and EVIDENCE_SMTP_TRUSTED_CLIENTS."""
        try:
            addr = ip_address(ip)
        except ValueError:
            return False
        if str(addr) in ("127.0.0.1", "::1"):
            return True
        return any(addr in net for net in self.smtp_trusted_clients)

    def check(self) -> None:
        """Cross-field checks that need files or combinations; raises ConfigError."""
        if self.slack_bot_token and not (self.slack_signing_secret or self.slack_app_token):
            raise ConfigError("SLACK_BOT_TOKEN needs SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)")
        if self.slack_app_token and not self.slack_app_token.startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token (xapp-…)")
        if self.slack_enabled and not self.review_channel:
            raise ConfigError("Slack is configured but EVIDENCE_REVIEW_CHANNEL (a channel ID, C…) is not set")
        if bool(self.smtp_tls_cert) != bool(self.smtp_tls_key):
            raise ConfigError("EVIDENCE_SMTP_TLS_CERT and EVIDENCE_SMTP_TLS_KEY must be set together")
        for p in (self.smtp_tls_cert, self.smtp_tls_key):
            if p and not p.is_file():
                raise ConfigError(f"TLS file not found: {p}")
        if bool(self.inbound_user) != bool(self.inbound_password):
            raise ConfigError("EVIDENCE_INBOUND_USER and EVIDENCE_INBOUND_PASSWORD must be set together")
        if self.imap_url and not (self.imap_password or self.imap_oauth2_token_command):
            raise ConfigError("EVIDENCE_IMAP_URL needs EVIDENCE_IMAP_PASSWORD or EVIDENCE_IMAP_OAUTH2_TOKEN_COMMAND")
        if self.imap_password and self.imap_oauth2_token_command:
            raise ConfigError("set EVIDENCE_IMAP_PASSWORD or EVIDENCE_IMAP_OAUTH2_TOKEN_COMMAND, not both")


def _dns_server(text: str) -> tuple[str, int]:
    """"192.0.2.53", "192.0.2.53:5353", "2001:db8::53" or "[2001:db8::53]:5353" -> (ip, port)."""
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ("" if rest else "53")
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ip = ip_address(host)
        n = int(port)
        if not 0 < n < 65536:
            raise ValueError
    except ValueError:
        raise ValueError(f"{text!r} is not a resolver address such as 192.0.2.53 or 192.0.2.53:5353") from None
    return str(ip), n


def load_settings() -> Settings:
    """Settings from the environment, or ConfigError with the offending variable named."""
    try:
        s = Settings()
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]).upper() if err.get("loc") else "configuration"
        for field_name, f in Settings.model_fields.items():
            if field_name == err["loc"][0] and isinstance(f.validation_alias, str):
                name = f.validation_alias
        raise ConfigError(f"invalid {name}: {err['msg']}") from None
    s.check()
    return s


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
