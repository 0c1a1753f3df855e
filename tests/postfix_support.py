"""A private Postfix instance for end-to-end tests, wired as in Postfix's FILTER_README.

    client ──▶ Postfix :upstream ──content_filter──▶ dlp-gateway :gw
                                                        │
               Postfix :reinject ◀──────────────────────┘
                    │ relayhost
                    ▼
                 sink :final

Runs with its own config and queue folders under the test's tmp_path, so it
never touches the machine's own Postfix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port, skip_or_fail, wait_for_port

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.agency.gov.au
mydomain = agency.gov.au
myorigin = $mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{final}
smtp_dns_support_level = disabled
smtp_host_lookup = native
maillog_file = {log}
maillog_file_prefixes = {root}
smtputf8_enable = yes
# Fast retries so a test can watch the queue drain.
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
"""

# Only the services this instance needs; the gateway's two ports as in FILTER_README.
MASTER_CF = """\
127.0.0.1:{upstream} inet n - n - - smtpd
  -o content_filter=dlpfilter:[127.0.0.1]:{gateway}
dlpfilter unix - - n - 10 smtp
  -o smtp_send_xforward_command=yes
  -o disable_mime_output_conversion=yes
  -o smtp_generic_maps=
127.0.0.1:{reinject} inet n - n - 10 smtpd
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_data_restrictions=
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixInstance:
    """Postfix's processes run as the postfix user, so the instance lives in a
    folder of its own that user can reach (pytest's tmp folders are root-only)."""

    gateway_port: int
    final_port: int
    upstream_port: int = 0
    reinject_port: int = 0

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dlp-postfix-"))
        self.root.chmod(0o755)
        self.upstream_port = self.upstream_port or free_port()
        self.reinject_port = self.reinject_port or free_port()
        self.config = self.root / "etc"
        self.log = self.root / "postfix.log"

    def start(self) -> PostfixInstance:
        if not os.path.exists(POSTFIX):
            skip_or_fail("Postfix is not installed (apt-get install postfix)")
        if os.geteuid() != 0:
            skip_or_fail("a private Postfix instance needs root")
        queue, data = self.root / "queue", self.root / "data"
        for folder in (self.config, queue, data):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(data, "postfix")
        (self.config / "main.cf").write_text(
            MAIN_CF.format(queue=queue, data=data, final=self.final_port, log=self.log, root=self.root)
        )
        (self.config / "master.cf").write_text(
            MASTER_CF.format(
                upstream=self.upstream_port, gateway=self.gateway_port, reinject=self.reinject_port
            )
        )
        # Postfix checks its folders are not writable by others; pytest's tmp dirs are fine.
        self._postfix("check")
        self._postfix("start")
        wait_for_port(self.upstream_port, 30)
        wait_for_port(self.reinject_port, 30)
        return self

    def stop(self) -> None:
        subprocess.run([POSTFIX, "-c", str(self.config), "stop"], capture_output=True, timeout=60)
        time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)

    def queue_is_empty(self) -> bool:
        out = subprocess.run(
            ["postqueue", "-c", str(self.config), "-j"], capture_output=True, text=True, timeout=30
        ).stdout
        return not out.strip()

    def flush(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.config), "-f"], capture_output=True, timeout=30)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            [POSTFIX, "-c", str(self.config), command], capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"postfix {command} failed: {result.stderr}\n{self.logs()}")
