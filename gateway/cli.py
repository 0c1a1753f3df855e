"""`dlp-gateway`: run the gateway, scan files, check policies, review held mail."""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import email.utils
import getpass
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from detectors import edm, fingerprint
from detectors.registry import all_entities
from gateway.accounts import AccountError, Accounts, Role
from gateway.app import detector_config, next_hop, resolve_policy_path, run_forever
from gateway.logs import configure_logging
from gateway.model import Decision, Envelope, ScanResult
from gateway.outbox import Outbox
from gateway.policy import Organisation, Policy, PolicyError, decide, load_policy
from gateway.policy.simulate import report, simulate
from gateway.retention import apply_retention
from gateway.review import ReviewError, reject, release
from gateway.scan import Scanner
from gateway.settings import Settings, SettingsError, load_settings
from gateway.store import Store, StoredMessage, StoreError
from gateway.store.crypto import Key, new_key_text
from gateway.store.sealed import key_usage


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Configured once the settings say which format; `run` logs every message, the others only problems.
    configure_logging(settings.log_format, logging.INFO if args.command == "run" else logging.WARNING)
    try:
        result: int = args.func(args, settings)
        return result
    except (PolicyError, ReviewError, SettingsError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlp-gateway", description=__doc__)
    parser.add_argument("--config", type=Path, help="settings YAML (default: embedded defaults)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the SMTP gateway")
    run.add_argument(
        "--deliver-to", type=Path, help="write passed mail to this folder instead of the next hop"
    )
    run.set_defaults(func=_cmd_run)

    scan = sub.add_parser("scan", help="scan .eml files or folders offline")
    scan.add_argument("paths", nargs="+", type=Path)
    scan.add_argument("--policy", type=Path)
    scan.add_argument("--sender")
    scan.add_argument("--rcpt", action="append", default=[])
    scan.add_argument("--json", action="store_true")
    scan.set_defaults(func=_cmd_scan)

    policy = sub.add_parser("policy", help="check or simulate a policy").add_subparsers(
        dest="action", required=True
    )
    check = policy.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_cmd_policy_check)
    test = policy.add_parser("test", help="run a policy over a folder of .eml files")
    test.add_argument("file", type=Path)
    test.add_argument("dir", type=Path)
    test.add_argument("--against", type=Path, help="an older policy: list only the decisions that change")
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

    edm = sub.add_parser("edm", help="exact data match indexes").add_subparsers(dest="action", required=True)
    edm_build = edm.add_parser("build", help="hash an agency's records into an index (no plaintext kept)")
    edm_build.add_argument("csv", type=Path)
    edm_build.add_argument("--columns", required=True, help="comma-separated column names to index")
    edm_build.add_argument("--out", type=Path, required=True)
    edm_build.add_argument(
        "--require", type=int, default=1, help="fields of one record that must occur together"
    )
    edm_build.set_defaults(func=_cmd_edm_build)

    fingerprint = sub.add_parser("fingerprint", help="registered confidential documents")
    fp = fingerprint.add_subparsers(dest="action", required=True)
    fp_add = fp.add_parser("add", help="register documents")
    fp_add.add_argument("files", nargs="+", type=Path)
    fp_add.add_argument("--db", type=Path, help="default: scan.fingerprint_db from the settings")
    fp_add.add_argument("--label")
    fp_add.set_defaults(func=_cmd_fingerprint_add)
    fp_list = fp.add_parser("list", help="list registered documents")
    fp_list.add_argument("--db", type=Path)
    fp_list.set_defaults(func=_cmd_fingerprint_list)
    fp_remove = fp.add_parser("remove", help="unregister a document")
    fp_remove.add_argument("doc_id", type=int)
    fp_remove.add_argument("--db", type=Path)
    fp_remove.set_defaults(func=_cmd_fingerprint_remove)

    expire = held.add_parser("expire", help="apply retention: expire old held messages, purge finished ones")
    expire.add_argument("--dry-run", action="store_true", help="only say what would be done")
    expire.set_defaults(func=_cmd_held_expire)

    user = sub.add_parser("user", help="console accounts").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a console account (password prompted, or read from stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["reviewer", "auditor", "admin"])
    add.add_argument("--email", default="", help="the user's own address (for separation of duties)")
    add.set_defaults(func=_cmd_user_add)
    users = user.add_parser("list", help="list console accounts")
    users.set_defaults(func=_cmd_user_list)

    store = sub.add_parser("store", help="encryption at rest").add_subparsers(dest="action", required=True)
    genkey = store.add_parser("genkey", help="print a new random key (for DLP_GATEWAY_ENCRYPTION_KEY)")
    genkey.set_defaults(func=_cmd_store_genkey)
    status = store.add_parser("status", help="rows per table and key")
    status.set_defaults(func=_cmd_store_status)
    rekey = store.add_parser("rekey", help="re-encrypt every row under the current key")
    rekey.add_argument("--batch", type=int, default=100, help="rows read at a time")
    rekey.add_argument(
        "--decrypt", action="store_true", help="with no key configured: store everything unencrypted"
    )
    rekey.set_defaults(func=_cmd_store_rekey)

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


def _load_policy(path: Path | None, settings: Settings, org: Organisation | None = None) -> Policy:
    groups = org.directory.names if org is not None else None  # None: not checked
    return load_policy(
        path or resolve_policy_path(settings.policy),
        all_entities(settings.detector_config().recognizers_dir),
        groups,
    )


def _cmd_policy_check(args: argparse.Namespace, settings: Settings) -> int:
    policy = _load_policy(args.file, settings, settings.organisation())
    print(f"{args.file}: ok ({len(policy.rules)} rules)")
    return 0


def _cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    org = settings.organisation()
    policy = _load_policy(args.policy, settings, org)
    scanner = Scanner.build(detector_config(settings, policy), settings.limits)  # once for all files
    for path in _eml_files(args.paths):
        raw = path.read_bytes()
        envelope = _envelope_from_headers(raw, args.sender, args.rcpt)
        scan = scanner.scan(raw)
        decision = decide(policy, scan, envelope, org)
        if args.json:
            print(json.dumps(_scan_json(path, scan, decision), ensure_ascii=False))
        else:
            _print_scan(path, scan, decision)
    return 0


def _cmd_policy_test(args: argparse.Namespace, settings: Settings) -> int:
    org = settings.organisation()
    policy = _load_policy(args.file, settings, org)
    against = _load_policy(args.against, settings, org) if args.against else None
    scanner = Scanner.build(detector_config(settings, policy), settings.limits)
    messages = ((str(p.relative_to(args.dir)), p.read_bytes()) for p in _eml_files([args.dir]))
    results = simulate(
        policy, messages, scanner.scan, lambda raw: _envelope_from_headers(raw, None, []), org, against
    )
    report(results, sys.stdout, comparing=against is not None)
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
        "monitor_decision": decision.monitor_action.label,
        "findings": [f.to_json() for f in scan.findings],
        "defects": scan.defects,
    }
    if len(set(decision.per_recipient.values())) > 1:
        data["recipients"] = {r: a.label for r, a in decision.per_recipient.items()}
    return data


def _print_scan(path: Path, scan: ScanResult, decision: Decision) -> None:
    would = decision.monitor_action
    extra = f" (with monitor rules enforced: {would.label.upper()})" if would != decision.action else ""
    print(f"{path}: {decision.action.label.upper()}{extra}")
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
    store = Store(settings.store_url, settings.encryption.keyring())
    store.migrate()
    return store


def _cmd_store_genkey(args: argparse.Namespace, settings: Settings) -> int:
    text = new_key_text()
    print(text)
    # The id (never the key) is what `store status` and error messages show.
    print(f"key id {Key.parse(text, 'new key').id}", file=sys.stderr)
    return 0


def _cmd_store_status(args: argparse.Namespace, settings: Settings) -> int:
    keyring = settings.encryption.keyring()
    store = Store(settings.store_url, keyring)
    store.upgrade()  # no key check: this is where to find out which keys are missing
    current = keyring.current.id if keyring.current else None
    print(f"current key: {current or 'none (new values stored unencrypted)'}")
    for usage in key_usage(store.engine):
        if usage.key is None:
            state = "unencrypted"
        elif usage.key == current:
            state = f"key {usage.key} (current)"
        elif usage.key in keyring.ids:
            state = f"key {usage.key} (old: run `dlp-gateway store rekey`)"
        else:
            state = f"key {usage.key} (NOT CONFIGURED: unreadable)"
        print(f"  {usage.table:16} {usage.rows:8} row(s)  {state}")
    return 0


def _cmd_store_rekey(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    if store.keyring.current is None and not args.decrypt:
        raise SettingsError(
            "no encryption key configured: set DLP_GATEWAY_ENCRYPTION_KEY "
            "(or pass --decrypt to store everything unencrypted)"
        )
    report = store.rekey(max(args.batch, 1))
    target = f"key {store.keyring.current.id}" if store.keyring.current else "no key (unencrypted)"
    print(f"{report.resealed} row(s) re-encrypted under {target}; {report.current} already were")
    if report.skipped:
        print(f"{report.skipped} row(s) changed while being re-encrypted: run rekey again")
    if report.resealed and store.engine.dialect.name == "postgresql":
        # PostgreSQL keeps superseded row versions until vacuumed (SQLite's are zeroed).
        print("PostgreSQL: run VACUUM on the store's tables so old row versions are reclaimed")
    for where, problem in report.failed.items():
        print(f"  cannot read {where}: {problem}", file=sys.stderr)
    return 1 if report.failed else 0


def _cmd_held_list(args: argparse.Namespace, settings: Settings) -> int:
    statuses: tuple[str, ...] = () if args.all else ("held", "pending")
    for message in _store(settings).list_messages(statuses):
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
    store = _store(settings)
    outbox = Outbox(store, settings.outbox)  # the configured retry schedule, as in the gateway
    result = asyncio.run(
        release(store, next_hop(settings), args.id, args.actor, args.rcpt or None, outbox=outbox)
    )
    print(f"{result.ident}: released to {', '.join(result.delivered)}")
    for rcpt, reply in result.refused.items():
        print(f"  refused by next hop: {rcpt}: {reply}")
    return 0


def _cmd_held_reject(args: argparse.Namespace, settings: Settings) -> int:
    reject(_store(settings), args.id, args.actor, args.reason)
    print(f"{args.id}: rejected")
    return 0


def _cmd_edm_build(args: argparse.Namespace, settings: Settings) -> int:
    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    stats = edm.build_index(args.csv, columns, args.out, require=args.require)
    print(
        f"{args.out}: {stats.records} records, {stats.entries} hashed values "
        f"({stats.skipped_values} skipped), {stats.index_bytes} bytes, {stats.seconds:.1f} s"
    )
    return 0


def _fingerprint_db(args: argparse.Namespace, settings: Settings) -> Path:
    db = args.db or (Path(settings.scan.fingerprint_db) if settings.scan.fingerprint_db else None)
    if db is None:
        raise ReviewError("no fingerprint database: pass --db or set scan.fingerprint_db")
    return Path(db)


def _cmd_fingerprint_add(args: argparse.Namespace, settings: Settings) -> int:
    for doc in fingerprint.add_documents(_fingerprint_db(args, settings), args.files, label=args.label):
        print(f"{doc.doc_id}: {doc.label} ({doc.fingerprints} fingerprints)")
    return 0


def _cmd_fingerprint_list(args: argparse.Namespace, settings: Settings) -> int:
    for doc in fingerprint.list_documents(_fingerprint_db(args, settings)):
        print(f"{doc.doc_id}: {doc.label} ({doc.fingerprints} fingerprints, added {doc.added})")
    return 0


def _cmd_fingerprint_remove(args: argparse.Namespace, settings: Settings) -> int:
    if not fingerprint.remove_document(_fingerprint_db(args, settings), args.doc_id):
        raise ReviewError(f"no document {args.doc_id}")
    print(f"{args.doc_id}: removed")
    return 0


def _cmd_held_expire(args: argparse.Namespace, settings: Settings) -> int:
    report = asyncio.run(
        apply_retention(_store(settings), next_hop(settings), settings.retention, dry_run=args.dry_run)
    )
    verb = "would be" if args.dry_run else "were"
    print(f"{len(report.expired)} held message(s) {verb} expired ({settings.retention.expire_action})")
    for ident in report.expired:
        print(f"  expired {ident}")
    print(f"{len(report.purged)} finished message(s) {verb} purged")
    for ident, problem in report.failed.items():
        print(f"  not expired {ident}: {problem}", file=sys.stderr)
    return 1 if report.failed else 0


def _cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        accounts = Accounts(_store(settings))
        user = accounts.add(args.name, Role.parse(args.role), password, args.email, actor="cli")
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"added {user.username} ({user.role.label})")
    return 0


def _cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    for user in Accounts(_store(settings)).all():
        state = "disabled" if user.disabled else "active"
        print(f"{user.username:24} {user.role.label:9} {state:8} {user.email}")
    return 0


def _cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    problems = _store(settings).verify_audit()
    for problem in problems:
        print(problem)
    print("audit trail intact" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
