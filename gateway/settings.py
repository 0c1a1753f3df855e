"""The settings file: one YAML document, every key optional, every key checked.

Defaults follow Postfix's FILTER_README convention (listen on 10025, re-inject
on 10026).  A wrong key or value stops the process with an error naming the key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import yaml

from detectors.config import DetectorConfig
from gateway.extract.limits import ExtractLimits


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


@dataclass(frozen=True)
class ScanSettings:
    workers: int = 2
    timeout_s: float = 60.0
    # What to do when scanning fails: "tempfail" (451, the MTA retries) or "hold".
    fail_mode: str = "tempfail"
    ner: bool = False
    min_score: float = 0.3
    recognizers_dir: str = ""
    edm_index: str = ""
    fingerprint_db: str = ""


@dataclass(frozen=True)
class ConsoleSettings:
    listen: str = "127.0.0.1:8025"
    enabled: bool = True
    public_url: str = "http://127.0.0.1:8025"


@dataclass(frozen=True)
class Settings:
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    next_hop: NextHopSettings = field(default_factory=NextHopSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    limits: ExtractLimits = field(default_factory=ExtractLimits)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    store_url: str = "sqlite:///var/dlp-gateway.sqlite3"
    policy: str = "policies/default.yaml"
    internal_domains: tuple[str, ...] = ()
    gateway_address: str = "dlp-gateway@localhost"

    def detector_config(self) -> DetectorConfig:
        """The subset the detection workers need."""
        return DetectorConfig(
            ner=self.scan.ner,
            min_score=self.scan.min_score,
            recognizers_dir=Path(self.scan.recognizers_dir) if self.scan.recognizers_dir else None,
            edm_index=Path(self.scan.edm_index) if self.scan.edm_index else None,
            fingerprint_db=Path(self.scan.fingerprint_db) if self.scan.fingerprint_db else None,
        )


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
    if settings.scan.fail_mode not in ("tempfail", "hold"):
        raise SettingsError("'scan.fail_mode' must be 'tempfail' or 'hold'")
    if settings.scan.workers < 1:
        raise SettingsError("'scan.workers' must be at least 1")
    if bool(settings.smtp.tls_cert) != bool(settings.smtp.tls_key):
        raise SettingsError("'smtp.tls_cert' and 'smtp.tls_key' must be set together")
    for name in ("max_message_bytes", "max_sessions", "max_in_flight"):
        if getattr(settings.smtp, name) < 1:
            raise SettingsError(f"'smtp.{name}' must be positive")
    store = urlsplit(settings.store_url).scheme.split("+")[0]
    if store not in ("sqlite", "postgresql"):
        raise SettingsError(f"'store_url' must be sqlite:/// or postgresql://, got {settings.store_url!r}")
