"""The settings file: one YAML document, every key optional, every key checked.

Defaults follow Postfix's FILTER_README convention (listen on 10025, re-inject
on 10026).  A wrong key or value stops the process with an error naming the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from detectors.config import DetectorConfig
from gateway.directory import Directory, DirectoryError, load_directory
from gateway.domains import DomainListError, DomainLists
from gateway.extract.limits import ExtractLimits
from gateway.policy.facts import Organisation
from gateway.store.crypto import Key, Keyring
from gateway.store.errors import BadKey

# Where the key is better kept than in the settings file (systemd EnvironmentFile, a
# Kubernetes Secret): the current key, and older keys separated by commas or spaces.
KEY_VARIABLE = "DLP_GATEWAY_ENCRYPTION_KEY"
OLD_KEYS_VARIABLE = "DLP_GATEWAY_ENCRYPTION_OLD_KEYS"


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the key."""


@dataclass(frozen=True)
class SmtpSettings:
    listen: str = "127.0.0.1:10025"
    hostname: str = "dlp-gateway.localhost"
    # Only these networks may connect: the gateway must never be an open relay.
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_message_bytes: int = 50 * 1024 * 1024
    max_sessions: int = 100
    max_in_flight: int = 20  # messages being scanned at once; more get 451
    tls_cert: str = ""
    tls_key: str = ""
    require_tls: bool = False
    idle_timeout_s: float = 300.0


@dataclass(frozen=True)
class NextHopSettings:
    # smtp://host:port (Postfix's re-injection listener), smtps://…, or file:FOLDER
    url: str = "smtp://127.0.0.1:10026"
    timeout_s: float = 30.0
    helo: str = "dlp-gateway.localhost"
    # Idle connections kept open for the next message (0: one connection per message).
    pool_size: int = 20
    # Seconds an idle connection is kept before it is closed.
    idle_s: float = 10.0


@dataclass(frozen=True)
class ScanSettings:
    workers: int = 2
    timeout_s: float = 60.0
    # What to do when scanning fails: "tempfail" (451, the MTA retries) or "hold".
    fail_mode: str = "tempfail"
    ner: bool = False
    min_score: float = 0.3
    max_findings_per_type: int = 1000
    result_cache_entries: int = 256
    recognizers_dir: str = ""
    edm_index: str = ""
    fingerprint_db: str = ""


@dataclass(frozen=True)
class ConsoleSettings:
    listen: str = "127.0.0.1:8025"
    enabled: bool = True
    public_url: str = "http://127.0.0.1:8025"
    # Cookies carry the Secure flag unless the console is served over plain http
    # (tests, or behind a TLS-terminating proxy on loopback).
    cookie_secure: bool = True
    session_idle_s: float = 900.0
    session_absolute_s: float = 8 * 3600.0
    # After this many failed logins in a row the account is locked; each further
    # lockout doubles the period, up to the maximum.
    lockout_threshold: int = 5
    lockout_base_s: float = 60.0
    lockout_max_s: float = 3600.0
    # A reviewer may not release a message they sent themselves.
    separation_of_duties: bool = True
    # Messages marked at or above this level (or hit by these rules) need two
    # reviewers: one approves, another releases.  Empty disables.
    four_eyes_marking: str = "PROTECTED"
    four_eyes_rules: tuple[str, ...] = ()
    timezone: str = "UTC"
    page_size: int = 50


@dataclass(frozen=True)
class RetentionSettings:
    # Held messages nobody acted on are expired after this many days ...
    expire_after_days: float = 14.0
    # ... by this action: "reject" (never delivered) or "release".
    expire_action: str = "reject"
    # Released and rejected messages lose their content this many days after.
    purge_after_days: float = 30.0


@dataclass(frozen=True)
class ConfirmSettings:
    """Warn and confirm: how senders are asked, and what happens when they do not answer."""

    # Confirmation links and reply tokens stop working after this long.
    token_lifetime_s: float = 24 * 3600.0
    justification_min_chars: int = 10
    # Notices to one sender per rolling hour; beyond it, warned mail is held for security staff.
    notices_per_sender_per_hour: int = 10
    # What an unconfirmed message becomes when its token expires: "discard" or "hold".
    expiry_action: str = "discard"
    # What "Cancel" does: "discard", or "hold" to keep it for security staff.
    cancel_action: str = "discard"
    # A folder of Jinja2 templates overriding the shipped notices and pages, by file name.
    template_dir: str = ""
    expiry_interval_s: float = 60.0


@dataclass(frozen=True)
class OutboxSettings:
    """Deliveries made after the SMTP transaction (releases, confirmed mail, notices)."""

    poll_interval_s: float = 2.0
    # A claimed job whose claimer went silent this long is given to another worker.
    lease_s: float = 300.0
    retry_base_s: float = 60.0
    retry_max_s: float = 3600.0
    # Like an MTA's queue lifetime: give up on a recipient after this long.
    max_age_s: float = 5 * 86400.0
    concurrency: int = 4


@dataclass(frozen=True)
class EncryptionSettings:
    """Encryption at rest of held mail (bytes, subject, findings, notices, notes)."""

    # The current key (32 bytes as base64 or 64 hex digits), or empty.  Better kept in
    # DLP_GATEWAY_ENCRYPTION_KEY than here.  Empty in both: stored unencrypted.
    key: str = ""
    # Keys from before a rotation: still read what they sealed until a rekey has run.
    old_keys: tuple[str, ...] = ()
    # Accept values stored before encryption was switched on; off once `store rekey` is done.
    read_plaintext: bool = True
    # The running gateway re-encrypts values under old keys (or none) this often; 0: never.
    rekey_interval_s: float = 3600.0
    rekey_batch: int = 100

    def keyring(self, environ: Mapping[str, str] | None = None) -> Keyring:
        """The keys from these settings and the environment; SettingsError naming the bad one."""
        env = os.environ if environ is None else environ
        from_env = env.get(KEY_VARIABLE, "").strip()
        if from_env and self.key and from_env != self.key.strip():
            raise SettingsError(f"'encryption.key' and {KEY_VARIABLE} differ: set the key in one place")
        try:
            current = Key.parse(from_env, KEY_VARIABLE) if from_env else None
            if current is None and self.key:
                current = Key.parse(self.key, "'encryption.key'")
            old = [Key.parse(k, f"'encryption.old_keys' item {i + 1}") for i, k in enumerate(self.old_keys)]
            old_env = [k for k in re.split(r"[\s,]+", env.get(OLD_KEYS_VARIABLE, "")) if k]
            old += [Key.parse(k, f"{OLD_KEYS_VARIABLE} item {i + 1}") for i, k in enumerate(old_env)]
            return Keyring(current, old, self.read_plaintext)
        except BadKey as exc:
            raise SettingsError(str(exc)) from None


@dataclass(frozen=True)
class Settings:
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    next_hop: NextHopSettings = field(default_factory=NextHopSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    limits: ExtractLimits = field(default_factory=ExtractLimits)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    confirm: ConfirmSettings = field(default_factory=ConfirmSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    encryption: EncryptionSettings = field(default_factory=EncryptionSettings)
    store_url: str = "sqlite:///var/dlp-gateway.sqlite3"
    policy: str = "policies/default.yaml"
    internal_domains: tuple[str, ...] = ()
    # Other organisations' domains the agency writes to (other agencies): lookalikes of
    # these are flagged too, and `recipient: partner` matches them.
    partner_domains: tuple[str, ...] = ()
    # Sender groups (YAML or CSV); empty: no groups.
    directory: str = ""
    # Domain lists; empty: the copies shipped in gateway/data.
    webmail_domains: str = ""
    posting_gateways: str = ""
    gateway_address: str = "dlp-gateway@localhost"
    # Log lines: "json" (one object per line, for a log shipper) or "text".
    log_format: str = "json"

    def detector_config(self) -> DetectorConfig:
        """The subset the detection workers need."""
        return DetectorConfig(
            ner=self.scan.ner,
            min_score=self.scan.min_score,
            max_findings_per_type=self.scan.max_findings_per_type,
            result_cache_entries=self.scan.result_cache_entries,
            recognizers_dir=Path(self.scan.recognizers_dir) if self.scan.recognizers_dir else None,
            edm_index=Path(self.scan.edm_index) if self.scan.edm_index else None,
            fingerprint_db=Path(self.scan.fingerprint_db) if self.scan.fingerprint_db else None,
        )

    def organisation(self) -> Organisation:
        """What the policy knows about the agency: domains, shipped lists, sender directory."""
        try:
            lists = DomainLists.load(
                Path(self.webmail_domains) if self.webmail_domains else None,
                Path(self.posting_gateways) if self.posting_gateways else None,
            )
            directory = load_directory(Path(self.directory)) if self.directory else Directory()
        except (DomainListError, DirectoryError) as exc:
            raise SettingsError(str(exc)) from None
        return Organisation(self.internal_domains, self.partner_domains, lists, directory)


def load_settings(path: Path | None) -> Settings:
    """Read and check a settings file; ``None`` gives the embedded defaults."""
    if path is None:
        return Settings()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: top level must be a mapping of keys")
    try:
        settings = _build(Settings, raw, "")
        _check(settings)
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return settings


def _build(cls: Any, raw: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise SettingsError(f"unknown key '{prefix}{key}' (known: {', '.join(sorted(known))})")
    values = {name: _coerce(hints[name], raw[name], f"{prefix}{name}") for name in raw}
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if is_dataclass(hint):
        if not isinstance(value, dict):
            raise SettingsError(f"'{key}' must be a mapping")
        return _build(hint, value, f"{key}.")
    if get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"'{key}' must be a list of strings")
        return tuple(value)
    expected = get_args(hint) or (hint,)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and bool not in expected:
        raise SettingsError(f"'{key}' must be {hint.__name__}, not a boolean")
    if not isinstance(value, expected):
        raise SettingsError(f"'{key}' must be {getattr(hint, '__name__', hint)}, got {value!r}")
    return value


def parse_hostport(value: str, key: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"'{key}' must be host:port, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _check(settings: Settings) -> None:
    parse_hostport(settings.smtp.listen, "smtp.listen")
    parse_hostport(settings.console.listen, "console.listen")
    for net in settings.smtp.allowed_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise SettingsError(f"'smtp.allowed_networks': {net!r} is not a network") from None
    hop = urlsplit(settings.next_hop.url)
    is_folder = hop.scheme == "file" and settings.next_hop.url.removeprefix("file:")
    if not is_folder and (hop.scheme not in ("smtp", "smtps") or not hop.hostname or not hop.port):
        raise SettingsError(
            f"'next_hop.url' must look like smtp://host:port or file:FOLDER, got {settings.next_hop.url!r}"
        )
    if settings.next_hop.pool_size < 0 or settings.next_hop.idle_s <= 0:
        raise SettingsError("'next_hop.pool_size' must be 0 or more and 'next_hop.idle_s' above 0")
    if settings.scan.fail_mode not in ("tempfail", "hold"):
        raise SettingsError("'scan.fail_mode' must be 'tempfail' or 'hold'")
    if settings.scan.workers < 1:
        raise SettingsError("'scan.workers' must be at least 1")
    for name in ("max_findings_per_type", "result_cache_entries"):
        if getattr(settings.scan, name) < 0:
            raise SettingsError(f"'scan.{name}' must be 0 (off) or more")
    if bool(settings.smtp.tls_cert) != bool(settings.smtp.tls_key):
        raise SettingsError("'smtp.tls_cert' and 'smtp.tls_key' must be set together")
    for name in ("max_message_bytes", "max_sessions", "max_in_flight"):
        if getattr(settings.smtp, name) < 1:
            raise SettingsError(f"'smtp.{name}' must be positive")
    _check_console(settings.console, settings.retention)
    _check_confirm(settings.confirm, settings.outbox)
    _check_encryption(settings.encryption)
    if settings.log_format not in ("json", "text"):
        raise SettingsError("'log_format' must be 'json' or 'text'")
    store = urlsplit(settings.store_url).scheme.split("+")[0]
    if store not in ("sqlite", "postgresql"):
        raise SettingsError(f"'store_url' must be sqlite:/// or postgresql://, got {settings.store_url!r}")


def _check_console(console: ConsoleSettings, retention: RetentionSettings) -> None:
    for name in ("session_idle_s", "session_absolute_s", "lockout_base_s", "lockout_max_s"):
        if getattr(console, name) <= 0:
            raise SettingsError(f"'console.{name}' must be positive")
    if console.lockout_threshold < 1 or console.page_size < 1:
        raise SettingsError("'console.lockout_threshold' and 'console.page_size' must be at least 1")
    try:
        ZoneInfo(console.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"'console.timezone': unknown time zone {console.timezone!r}") from None
    if retention.expire_action not in ("reject", "release"):
        raise SettingsError("'retention.expire_action' must be 'reject' or 'release'")
    if retention.expire_after_days <= 0 or retention.purge_after_days <= 0:
        raise SettingsError("'retention' periods must be positive")


def _check_encryption(encryption: EncryptionSettings) -> None:
    # Only the file's own keys: the environment is read when the store is opened.
    encryption.keyring(environ={})
    if encryption.rekey_interval_s < 0 or encryption.rekey_batch < 1:
        raise SettingsError("'encryption.rekey_interval_s' must not be negative, 'rekey_batch' at least 1")


def _check_confirm(confirm: ConfirmSettings, outbox: OutboxSettings) -> None:
    if confirm.expiry_action not in ("discard", "hold"):
        raise SettingsError("'confirm.expiry_action' must be 'discard' or 'hold'")
    if confirm.cancel_action not in ("discard", "hold"):
        raise SettingsError("'confirm.cancel_action' must be 'discard' or 'hold'")
    if confirm.token_lifetime_s <= 0 or confirm.expiry_interval_s <= 0:
        raise SettingsError("'confirm.token_lifetime_s' and 'confirm.expiry_interval_s' must be positive")
    if confirm.notices_per_sender_per_hour < 0 or confirm.justification_min_chars < 0:
        raise SettingsError("'confirm' limits must not be negative")
    if confirm.template_dir and not Path(confirm.template_dir).is_dir():
        raise SettingsError(f"'confirm.template_dir': no such folder {confirm.template_dir!r}")
    for name in ("poll_interval_s", "lease_s", "retry_base_s", "retry_max_s", "max_age_s"):
        if getattr(outbox, name) <= 0:
            raise SettingsError(f"'outbox.{name}' must be positive")
    if outbox.concurrency < 1:
        raise SettingsError("'outbox.concurrency' must be at least 1")
