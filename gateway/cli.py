"""`dlp-gateway`: run the gateway, scan files, check policies, review held mail."""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import email.utils
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from detectors.registry import all_entities
from gateway.app import next_hop, resolve_policy_path, run_forever
from gateway.model import Decision, Envelope, ScanResult
from gateway.policy import Policy, PolicyError, decide, load_policy
from gateway.review import ReviewError, reject, release
from gateway.scan import Scanner
from gateway.settings import Settings, SettingsError, load_settings
from gateway.store import Store, StoredMessage


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command == "run" else logging.WARNING, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result: int = args.func(args, settings)
        return result
    except (PolicyError, ReviewError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlp-gateway", description=__doc__)
    parser.add_argument("--config", type=Path, help="settings YAML (default: embedded defaults)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the SMTP gateway")
    run.add_argument("--deliver-to", type=Path, help="write passed mail to this folder instead of the next hop")
    run.set_defaults(func=_cmd_run)

    scan = sub.add_parser("scan", help="scan .eml files or folders offline")
    scan.add_argument("paths", nargs="+", type=Path)
    scan.add_argument("--policy", type=Path)
    scan.add_argument("--sender")
    scan.add_argument("--rcpt", action="append", default=[])
    scan.add_argument("--json", action="store_true")
    scan.set_defaults(func=_cmd_scan)

    policy = sub.add_parser("policy", help="check or simulate a policy").add_subparsers(dest="action", required=True)
    check = policy.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_cmd_policy_check)
    test = policy.add_parser("test", help="run a policy over a folder of .eml files")
    test.add_argument("file", type=Path)
    test.add_argument("dir", type=Path)
    test.set_defaults(func=_cmd_policy_test)

    held = sub.add_parser("held", help="review held messages").add_subparsers(dest="action", required=True)
    listing = held.add_parser("list")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--all", action="store_true", help="include released and rejected")
    listing.set_defaults(func=_cmd_held_list)
    show = held.add_parser("show")
    show.add_argument("id")
    show.set_defaults(func=_cmd_held_show)
    rel = held.add_parser("release")
    rel.add_argument("id")
    rel.add_argument("--rcpt", action="append", default=[], help="release to these recipients only")
    rel.add_argument("--actor", default="cli")
    rel.set_defaults(func=_cmd_held_release)
    rej = held.add_parser("reject")
    rej.add_argument("id")
    rej.add_argument("--reason", default="")
    rej.add_argument("--actor", default="cli")
    rej.set_defaults(func=_cmd_held_reject)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="check the audit trail's hash chain")
    verify.set_defaults(func=_cmd_audit_verify)
    return parser


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.deliver_to:
        hop = replace(settings.next_hop, url=f"file:{args.deliver_to}")
        settings = replace(settings, next_hop=hop)
    asyncio.run(run_forever(settings))
    return 0


def _load_policy(path: Path | None, settings: Settings) -> Policy:
    return load_policy(path or resolve_policy_path(settings.policy), all_entities())


def _cmd_policy_check(args: argparse.Namespace, settings: Settings) -> int:
    policy = load_policy(args.file, all_entities())
    print(f"{args.file}: ok ({len(policy.rules)} rules)")
    return 0


def _cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    policy = _load_policy(args.policy, settings)
    scanner = Scanner.build(settings.detector_config(), settings.limits)  # once for all files
    for path in _eml_files(args.paths):
        raw = path.read_bytes()
        envelope = _envelope_from_headers(raw, args.sender, args.rcpt)
        scan = scanner.scan(raw)
        decision = decide(policy, scan, envelope, settings.internal_domains)
        if args.json:
            print(json.dumps(_scan_json(path, scan, decision), ensure_ascii=False))
        else:
            _print_scan(path, scan, decision)
    return 0


def _cmd_policy_test(args: argparse.Namespace, settings: Settings) -> int:
    policy = load_policy(args.file, all_entities())
    scanner = Scanner.build(settings.detector_config(), settings.limits)
    totals: dict[str, int] = {}
    print(f"{'message':60} {'decision':8} rules")
    for path in _eml_files([args.dir]):
        raw = path.read_bytes()
        decision = decide(policy, scanner.scan(raw), _envelope_from_headers(raw, None, []), settings.internal_domains)
        label = decision.action.label
        totals[label] = totals.get(label, 0) + 1
        print(f"{str(path.relative_to(args.dir))[:60]:60} {label:8} {', '.join(decision.rule_names)}")
    print("totals: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())))
    return 0


def _eml_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            yield path


def _envelope_from_headers(raw: bytes, sender: str | None, rcpts: list[str]) -> Envelope:
    """The envelope a scan assumes: as given, else From and To/Cc/Bcc."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if sender is None:
        sender = email.utils.parseaddr(str(msg.get("From", "")))[1]
    if not rcpts:
        fields = [str(v) for name in ("To", "Cc", "Bcc") for v in msg.get_all(name, [])]
        rcpts = [addr for _, addr in email.utils.getaddresses(fields) if addr]
    return Envelope(sender=sender, recipients=tuple(dict.fromkeys(rcpts)) or ("unknown@invalid",))


def _scan_json(path: Path, scan: ScanResult, decision: Decision) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file": str(path),
        "decision": decision.action.label,
        "rules": decision.rule_names,
        "explanations": [h.to_json() for h in decision.hits],
        "findings": [f.to_json() for f in scan.findings],
        "defects": scan.defects,
    }
    if len(set(decision.per_recipient.values())) > 1:
        data["recipients"] = {r: a.label for r, a in decision.per_recipient.items()}
    return data


def _print_scan(path: Path, scan: ScanResult, decision: Decision) -> None:
    print(f"{path}: {decision.action.label.upper()}")
    for hit in decision.hits:
        mode = " (monitor)" if hit.monitor else ""
        print(f"  rule {hit.name}{mode}: {hit.action.label} — {hit.description}")
    if len(set(decision.per_recipient.values())) > 1:
        for rcpt, action in decision.per_recipient.items():
            print(f"  recipient {rcpt}: {action.label}")
    for f in scan.findings:
        print(f"  {f.entity_type:20} {f.score:.2f}  {f.location:30} {f.excerpt}")
    if scan.defects:
        print(f"  defects: {len(scan.defects)} ({', '.join(sorted(set(scan.defects))[:3])})")


def _store(settings: Settings) -> Store:
    store = Store(settings.store_url)
    store.migrate()
    return store


def _cmd_held_list(args: argparse.Namespace, settings: Settings) -> int:
    statuses: tuple[str, ...] = () if args.all else ("held", "pending")
    for message in _store(settings).list(statuses):
        if args.json:
            print(json.dumps(_message_json(message), ensure_ascii=False))
        else:
            rules = ", ".join(r["name"] for r in message.rules)
            print(
                f"{message.id}  {message.status:9} {message.created_at:%Y-%m-%d %H:%M}  "
                f"{message.sender} → {', '.join(message.recipients)}  [{rules}]"
            )
    return 0


def _message_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status,
        "decision": message.decision,
        "created_at": message.created_at.isoformat(),
        "sender": message.sender,
        "recipients": message.recipients,
        "per_recipient": message.per_recipient,
        "rules": [r["name"] for r in message.rules],
        "subject": message.subject,
        "findings": [f.to_json() for f in message.findings],
    }


def _cmd_held_show(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    message = store.get(args.id)
    if message is None:
        raise ReviewError(f"{args.id}: no such message")
    print(json.dumps(_message_json(message), ensure_ascii=False, indent=2))
    for rule in message.rules:
        print(f"rule {rule['name']}: {rule.get('description', '')}")
    for entry in store.audit_trail(args.id):
        print(f"audit {entry.at:%Y-%m-%d %H:%M:%S} {entry.actor} {entry.action} {json.dumps(entry.detail)}")
    return 0


def _cmd_held_release(args: argparse.Namespace, settings: Settings) -> int:
    result = asyncio.run(release(_store(settings), next_hop(settings), args.id, args.actor, args.rcpt or None))
    print(f"{result.ident}: released to {', '.join(result.delivered)}")
    for rcpt, reply in result.refused.items():
        print(f"  refused by next hop: {rcpt}: {reply}")
    return 0


def _cmd_held_reject(args: argparse.Namespace, settings: Settings) -> int:
    reject(_store(settings), args.id, args.actor, args.reason)
    print(f"{args.id}: rejected")
    return 0


def _cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    problems = _store(settings).verify_audit()
    for problem in problems:
        print(problem)
    print("audit trail intact" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
