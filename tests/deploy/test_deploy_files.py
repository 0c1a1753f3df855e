"""deploy/: every file parses with the real parser or tool, and the files agree
with each other and with the gateway (ports, paths, labels, settings, policy).

Postfix snippets are merged into a private config folder and checked by
Postfix itself; the systemd unit by systemd-analyze; settings files by the
gateway's own loader.  Nothing here needs Docker or a cluster.
"""

from __future__ import annotations

import ctypes
import email.message
import io
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from configparser import ConfigParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from detectors.registry import all_entities
from gateway.policy import load_policy
from gateway.settings import Settings, load_settings, parse_hostport
from tests import postfix_support
from tests.support import REPO, skip_or_fail

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose"
CONTAINER = DEPLOY / "container"
SYSTEMD = DEPLOY / "systemd"
POSTFIX_DIST_MASTER = Path("/usr/share/postfix/master.cf.dist")


# --- helpers ---------------------------------------------------------------


def load_yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def settings_from_text(text: str, tmp_path: Path, name: str = "gateway.yaml") -> Settings:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def port_of(listen: str) -> int:
    return parse_hostport(listen, "listen")[1]


def k8s_objects() -> dict[str, dict[str, Any]]:
    """kind -> the one object of that kind in deploy/kubernetes."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(path):
            assert doc["kind"] not in objects, f"two {doc['kind']} objects"
            objects[doc["kind"]] = doc
    return objects


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's ignore semantics: the last matching pattern wins, "!" re-includes,
    and a pattern matching a folder covers everything under it."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + r"\Z")

    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        matcher = regex(body.strip("/"))
        if any(matcher.match(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def ignore_patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def systemd_entries(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd keys may repeat, e.g. SystemCallFilter=)."""
    entries: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            entries.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        entries[section].setdefault(key.strip(), []).append(value.strip())
    return entries


# --- every file --------------------------------------------------------------


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        docs = load_yaml_docs(path)
        assert docs, f"{path} is empty"
        assert all(isinstance(doc, dict) for doc in docs), path


def test_the_documented_files_exist() -> None:
    for relative in (
        "README.md",
        "exchange-online.md",
        "postfix/README.md",
        "postfix/after-queue/main.cf",
        "postfix/after-queue/master.cf",
        "postfix/before-queue/main.cf",
        "postfix/before-queue/master.cf",
        "systemd/dlp-gateway.service",
        "container/Dockerfile",
        "container/Dockerfile.dockerignore",
        "container/gateway.yaml",
        "compose/compose.yaml",
    ):
        assert (DEPLOY / relative).is_file(), relative


# --- settings files and policy ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [CONTAINER / "gateway.yaml", COMPOSE / "gateway.yaml", SYSTEMD / "gateway.yaml"],
    ids=lambda p: p.parent.name,
)
def test_settings_files_load_with_the_gateways_loader(path: Path) -> None:
    settings = load_settings(path)
    assert settings.console.enabled, "the probes and HEALTHCHECK need /healthz and /readyz"
    # Never an open relay: no "anything" network.
    for net in settings.smtp.allowed_networks:
        assert ipaddress.ip_network(net, strict=False).prefixlen >= 8, net
    # The policy is an absolute path in the image / on the host, and it is ours.
    assert Path(settings.policy).is_absolute()
    assert settings.policy == "/etc/dlp-gateway/policies/default.yaml"


def test_the_policy_the_images_settings_name_is_the_shipped_one_and_loads() -> None:
    """The Dockerfile copies policies/ to /etc/dlp-gateway/policies/: the path the
    container, compose and Kubernetes settings name must be a valid policy."""
    copies = [
        args.split() for word, args in dockerfile_instructions(CONTAINER / "Dockerfile") if word == "COPY"
    ]
    assert ["policies/", "/etc/dlp-gateway/policies/"] in copies
    policy = load_policy(REPO / "policies" / "default.yaml", all_entities())
    assert policy.rules


def test_container_settings_listen_on_all_interfaces() -> None:
    settings = load_settings(CONTAINER / "gateway.yaml")
    assert parse_hostport(settings.smtp.listen, "smtp.listen")[0] == "0.0.0.0"
    assert parse_hostport(settings.console.listen, "console.listen")[0] == "0.0.0.0"
    assert settings.scan.ner, "the image installs the ner extra"


# --- container -----------------------------------------------------------------


def test_dockerfile_is_non_root_with_healthcheck_and_no_piped_installers() -> None:
    text = (CONTAINER / "Dockerfile").read_text(encoding="utf-8")
    instructions = dockerfile_instructions(CONTAINER / "Dockerfile")
    stage = final_stage(instructions)
    assert stage[0] == ("FROM", "python:3.11-slim")
    users = [args for word, args in stage if word == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert int(user) >= 1000, "a numeric uid lets Kubernetes verify runAsNonRoot"
    assert "playwright install" not in text
    assert not re.search(r"(curl|wget)[^\n|]*\|\s*(ba|da)?sh", text), "no curl | sh"
    installs = " ".join(args for word, args in instructions if word == "RUN")
    assert 'pip install ".[ner]"' in installs
    for package in ("libmagic1", "tesseract-ocr"):
        assert re.search(rf"apt-get install [^&]*\b{package}\b", installs), package

    healthchecks = [args for word, args in stage if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    settings = load_settings(CONTAINER / "gateway.yaml")
    console_port = port_of(settings.console.listen)
    assert "urllib.request" in healthchecks[0]
    assert f"http://127.0.0.1:{console_port}/readyz" in healthchecks[0]

    exposed = {int(p) for word, args in stage if word == "EXPOSE" for p in args.split()}
    assert exposed == {port_of(settings.smtp.listen), console_port}

    # The entrypoint reads the settings file baked in from deploy/container/gateway.yaml.
    copies = [args.split() for word, args in stage if word == "COPY"]
    assert ["deploy/container/gateway.yaml", "/etc/dlp-gateway/gateway.yaml"] in copies
    entrypoint = json.loads(next(args for word, args in stage if word == "ENTRYPOINT"))
    assert entrypoint[entrypoint.index("--config") + 1] == "/etc/dlp-gateway/gateway.yaml"
    assert json.loads(next(args for word, args in stage if word == "CMD")) == ["run"]


def test_dockerignore_sends_what_the_build_copies_and_nothing_private() -> None:
    patterns = ignore_patterns(CONTAINER / "Dockerfile.dockerignore")
    sources: list[str] = []
    for word, args in dockerfile_instructions(CONTAINER / "Dockerfile"):
        if word == "COPY" and not args.startswith("--"):
            sources.extend(args.split()[:-1])
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        probe = source.rstrip("/") + ("/__init__.py" if source.endswith("/") else "")
        assert not docker_ignored(probe, patterns), f"{probe} would be left out of the build context"
    for private in (".venv/bin/python", ".git/HEAD", "var/dlp-gateway.sqlite3", "tests/support.py", ".env"):
        assert docker_ignored(private, patterns), f"{private} would be sent to the build"
    assert docker_ignored("gateway/__pycache__/app.cpython-311.pyc", patterns)


def test_dockerignore_matcher_follows_docker_rules() -> None:
    """The matcher used above: last match wins, ! re-includes, folders cover their contents."""
    assert docker_ignored("a/b.txt", ["*"])
    assert not docker_ignored("a/b.txt", ["*", "!a/"])
    assert docker_ignored("a/x/__pycache__/c.pyc", ["*", "!a/", "**/__pycache__"])
    assert not docker_ignored("b.txt", ["a"])


# --- compose ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    docs = load_yaml_docs(COMPOSE / "compose.yaml")
    assert len(docs) == 1
    return dict(docs[0])


def gateway_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if name.startswith("gateway")}


def test_compose_has_postgres_two_gateways_postfix_and_a_sink(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "postfix", "sink"} <= set(services)
    assert len(gateway_services(compose)) == 2
    health = services["postgres"]["healthcheck"]
    assert "pg_isready" in " ".join(health["test"])
    assert services["postgres"]["image"].startswith("postgres:")


def test_compose_gateways_share_the_postgres_store(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres_env = services["postgres"]["environment"]
    for name, gateway in gateway_services(compose).items():
        assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy", name
        build = gateway["build"]
        dockerfile = (COMPOSE / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile == (CONTAINER / "Dockerfile").resolve(), name
        mounts = {v.split(":")[1]: v.split(":")[0] for v in gateway["volumes"]}
        settings = load_settings(COMPOSE / mounts["/etc/dlp-gateway/gateway.yaml"])
        store = urlsplit(settings.store_url)
        assert store.scheme == "postgresql"
        assert store.hostname == "postgres" and store.port == 5432, "store_url must name the postgres service"
        assert store.username == postgres_env["POSTGRES_USER"]
        assert store.path.lstrip("/") == postgres_env["POSTGRES_DB"]
        assert store.password is None, "the password comes from PGPASSWORD, not the settings file"
        assert gateway["environment"]["PGPASSWORD"] == postgres_env["POSTGRES_PASSWORD"]


def compose_ip(service: dict[str, Any]) -> str:
    return str(next(iter(service["networks"].values()))["ipv4_address"])


def test_compose_addresses_agree_between_gateways_and_postfix(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateways = gateway_services(compose)
    subnet = ipaddress.ip_network(compose["networks"]["mail"]["ipam"]["config"][0]["subnet"])
    postfix_ip = ipaddress.ip_address(compose_ip(services["postfix"]))
    gateway_ips = sorted(compose_ip(svc) for svc in gateways.values())
    assert all(ipaddress.ip_address(ip) in subnet for ip in [*gateway_ips, str(postfix_ip)])

    settings = load_settings(COMPOSE / "gateway.yaml")
    # Only Postfix (and loopback) may hand mail to the gateways.
    outside_loopback = [
        ipaddress.ip_network(n) for n in settings.smtp.allowed_networks if not n.startswith("127.")
    ]
    assert outside_loopback == [ipaddress.ip_network(f"{postfix_ip}/32")]
    hop = urlsplit(settings.next_hop.url)
    assert hop.hostname == "postfix" and hop.port == 10026

    main_cf = (COMPOSE / "postfix" / "main.cf").read_text(encoding="utf-8")
    content_filter = re.search(r"^content_filter\s*=\s*(\S+)", main_cf, re.M)
    assert content_filter
    parsed = re.fullmatch(r"([\w-]+):\[([\w.-]+)\]:(\d+)", content_filter.group(1))
    assert parsed, content_filter.group(1)
    transport, host, port = parsed.groups()
    assert transport == "dlp-gateway"
    assert int(port) == port_of(settings.smtp.listen)
    # Load balancing: the one filter destination is an alias every gateway answers to.
    for name, gateway in gateways.items():
        assert host in next(iter(gateway["networks"].values()))["aliases"], name

    master_cf = (COMPOSE / "postfix" / "master.cf").read_text(encoding="utf-8")
    trusted = re.search(r"-o mynetworks=(\S+)", master_cf)
    assert trusted
    assert sorted(n.removesuffix("/32") for n in trusted.group(1).split(",")) == gateway_ips
    assert re.search(r"^10026\s+inet\b", master_cf, re.M)


# --- kubernetes -----------------------------------------------------------------


def test_kubernetes_manifests_have_the_required_fields_and_kinds() -> None:
    objects = k8s_objects()
    assert set(objects) == {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for kind, obj in objects.items():
        assert obj["apiVersion"] and obj["metadata"]["name"], kind
    assert objects["Deployment"]["apiVersion"] == "apps/v1"
    assert objects["PodDisruptionBudget"]["apiVersion"] == "policy/v1"
    assert objects["NetworkPolicy"]["apiVersion"] == "networking.k8s.io/v1"
    kustomization = load_yaml_docs(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_kubernetes_deployment_is_hardened_and_probed() -> None:
    objects = k8s_objects()
    deployment = objects["Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] >= 2
    assert matches(spec["selector"]["matchLabels"], pod_labels)
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # The uid the image was built with.
    stage = final_stage(dockerfile_instructions(CONTAINER / "Dockerfile"))
    image_uid = int(next(args for word, args in reversed(stage) if word == "USER").split(":")[0])
    assert pod["securityContext"]["runAsUser"] == image_uid

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind

    # The settings come from the ConfigMap; var/ (the working directory's) is an emptyDir.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    config_arg = container["command"][container["command"].index("--config") + 1]
    config_dir, config_key = config_arg.rsplit("/", 1)
    assert volumes[mounts[config_dir]]["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert config_key in objects["ConfigMap"]["data"]
    workdir = next(args for word, args in reversed(stage) if word == "WORKDIR")
    assert "emptyDir" in volumes[mounts[f"{workdir}/var"]]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    (env_from,) = container["envFrom"]
    assert env_from["secretRef"]["name"] == objects["Secret"]["metadata"]["name"]


def container_ports(objects: dict[str, dict[str, Any]]) -> dict[str, int]:
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def configmap_settings(objects: dict[str, dict[str, Any]], tmp_path: Path) -> Settings:
    return settings_from_text(objects["ConfigMap"]["data"]["gateway.yaml"], tmp_path)


def test_kubernetes_service_ports_match_the_settings(tmp_path: Path) -> None:
    objects = k8s_objects()
    settings = configmap_settings(objects, tmp_path)
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = objects["Service"]["spec"]
    assert matches(service["selector"], pod_labels)
    named = container_ports(objects)
    targets = {p["name"]: (p["port"], named[p["targetPort"]]) for p in service["ports"]}
    assert targets["smtp"] == (port_of(settings.smtp.listen), port_of(settings.smtp.listen))
    assert targets["http"] == (port_of(settings.console.listen), port_of(settings.console.listen))
    probes = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert named[probes["readinessProbe"]["httpGet"]["port"]] == port_of(settings.console.listen)


def test_kubernetes_configmap_settings_load_and_use_postgresql(tmp_path: Path) -> None:
    objects = k8s_objects()
    settings = configmap_settings(objects, tmp_path)
    assert parse_hostport(settings.smtp.listen, "smtp.listen")[0] == "0.0.0.0"
    assert settings.console.enabled
    store = urlsplit(settings.store_url)
    assert store.scheme == "postgresql", "several replicas must share PostgreSQL"
    assert store.password is None, "the password belongs in the Secret"
    assert settings.policy == "/etc/dlp-gateway/policies/default.yaml"


def test_kubernetes_secret_is_a_template() -> None:
    secret = k8s_objects()["Secret"]
    values = secret["stringData"]
    assert set(values) == {"PGPASSWORD", "DLP_GATEWAY_ENCRYPTION_KEY"}
    assert all(value == "CHANGE-ME" for value in values.values()), "no real secret in the repository"
    assert "data" not in secret


def test_kubernetes_pdb_and_networkpolicy_select_the_gateway_pods(tmp_path: Path) -> None:
    objects = k8s_objects()
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    pdb = objects["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] == 1
    assert matches(pdb["selector"]["matchLabels"], pod_labels)
    policy = objects["NetworkPolicy"]["spec"]
    assert matches(policy["podSelector"]["matchLabels"], pod_labels)
    smtp_port = port_of(configmap_settings(objects, tmp_path).smtp.listen)
    smtp_rules = [r for r in policy["ingress"] if any(p["port"] == smtp_port for p in r["ports"])]
    assert len(smtp_rules) == 1
    (source,) = smtp_rules[0]["from"]
    assert source["namespaceSelector"]["matchLabels"], "SMTP only from the MTA's namespace"


# --- systemd -----------------------------------------------------------------------


def test_systemd_unit_parses_and_is_hardened() -> None:
    unit = SYSTEMD / "dlp-gateway.service"
    # strict=False: systemd allows a key more than once (SystemCallFilter=).
    parser = ConfigParser(strict=False, interpolation=None)
    parser.read(unit, encoding="utf-8")
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    service = systemd_entries(unit)["Service"]

    def one(key: str) -> str:
        assert key in service, key
        return service[key][-1]

    assert one("ProtectSystem") == "strict"
    assert one("StateDirectory") == "dlp-gateway"
    assert one("WorkingDirectory") == "/var/lib/dlp-gateway"
    for key in ("NoNewPrivileges", "PrivateTmp", "MemoryDenyWriteExecute"):
        assert one(key) == "yes", key
    assert one("CapabilityBoundingSet") == ""
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in service["SystemCallFilter"]
    assert one("Restart") == "on-failure"
    assert re.fullmatch(r"\S*kill -HUP \$MAINPID", one("ExecReload"))
    assert one("EnvironmentFile").lstrip("-").startswith("/etc/dlp-gateway/")
    assert one("User") != "root" or one("DynamicUser") == "yes"
    # --config is an option of the program, before the sub-command.
    argv = shlex.split(one("ExecStart"))
    assert argv[1:] == ["--config", "/etc/dlp-gateway/gateway.yaml", "run"]


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze") or ""
    if not analyze:
        skip_or_fail("systemd-analyze is not installed (apt-get install systemd)")
    # verify checks that ExecStart exists: point it at this checkout's console script.
    script = Path(sys.executable).with_name("dlp-gateway")
    assert script.exists()
    text = (SYSTEMD / "dlp-gateway.service").read_text(encoding="utf-8")
    unit = tmp_path / "dlp-gateway.service"
    unit.write_text(text.replace("/opt/dlp-gateway/bin/dlp-gateway", str(script)), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # Unknown keys and bad values are only warnings: there must be none.
    assert result.stderr.strip() == "", result.stderr


def test_memory_deny_write_execute_is_compatible_with_a_full_scan(tmp_path: Path) -> None:
    """MemoryDenyWriteExecute=yes kills a process that maps writable+executable
    memory (JITs, old libffi).  Run a real scan (NER, OCR, libmagic, attachments)
    under the kernel's equivalent, PR_SET_MDWE, and show it is in force."""
    if shutil.which("tesseract") is None:
        skip_or_fail("tesseract not installed (apt-get install tesseract-ocr)")
    from PIL import Image, ImageDraw, ImageFont

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_mdwe, pr_mdwe_refuse_exec_gain = 65, 1

    def deny_write_execute() -> None:
        if libc.prctl(pr_set_mdwe, pr_mdwe_refuse_exec_gain, 0, 0, 0) != 0:
            os._exit(97)

    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)",
        ],
        preexec_fn=deny_write_execute,
        capture_output=True,
        text=True,
    )
    if probe.returncode == 97:
        skip_or_fail("the kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert probe.returncode != 0 and "PermissionError" in probe.stderr, "W+X memory was not refused"

    image = Image.new("RGB", (900, 120), "white")
    ImageDraw.Draw(image).text(
        (20, 30), "TFN 123 456 782", fill="black", font=ImageFont.load_default(size=48)
    )
    png = io.BytesIO()
    image.save(png, format="PNG")
    message = email.message.EmailMessage()
    message["From"] = "alice@agency.gov.au"
    message["To"] = "bob@example.com"
    message["Subject"] = "scan"
    message.set_content("Notes from the meeting with John Smith in Canberra.")
    message.add_attachment(png.getvalue(), maintype="image", subtype="png", filename="scan.png")
    eml = tmp_path / "m.eml"
    eml.write_bytes(message.as_bytes())
    config = tmp_path / "gateway.yaml"
    config.write_text("scan:\n  ner: true\n", encoding="utf-8")

    script = Path(sys.executable).with_name("dlp-gateway")
    result = subprocess.run(
        [str(script), "--config", str(config), "scan", "--json", str(eml)],
        preexec_fn=deny_write_execute,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout.splitlines()[-1])["findings"]
    found = {(f["entity_type"], f["location"].split("#")[0]) for f in findings}
    assert any(kind == "AU_TFN" and "scan.png" in where for kind, where in found), found
    assert any(kind == "PERSON" for kind, _ in found), found


# --- postfix -----------------------------------------------------------------------


@pytest.fixture
def postfix_dir() -> Iterator[Path]:
    """A private Postfix config + queue folder the postfix user can reach."""
    if not os.path.exists(postfix_support.POSTFIX):
        skip_or_fail("Postfix is not installed (apt-get install postfix)")
    if not POSTFIX_DIST_MASTER.exists():
        skip_or_fail(f"Postfix's stock master.cf is absent: {POSTFIX_DIST_MASTER}")
    root = Path(tempfile.mkdtemp(prefix="dlp-deploy-postfix-"))
    root.chmod(0o755)
    for folder in ("etc", "queue", "data"):
        (root / folder).mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def without_service(master_cf: str, service: str, kind: str) -> str:
    """master.cf minus one entry (its line and the indented lines continuing it)."""
    out: list[str] = []
    skipping = False
    for line in master_cf.splitlines():
        if line[:1].isspace() and skipping:
            continue
        skipping = bool(re.match(rf"{re.escape(service)}\s+{kind}\s", line))
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def write_postfix_config(root: Path, main_cf: str, master_cf: str) -> Path:
    """A stock Postfix config with the deploy snippets merged in, as an admin would."""
    config = root / "etc"
    (config / "main.cf").write_text(
        f"compatibility_level = 3.6\n{main_cf}\n"
        # The private instance's own folders; logs on stdout so warnings are seen here.
        f"queue_directory = {root / 'queue'}\ndata_directory = {root / 'data'}\n"
        "maillog_file = /dev/stdout\n",
        encoding="utf-8",
    )
    (config / "master.cf").write_text(master_cf, encoding="utf-8")
    return config


def postfix_ok(config: Path, root: Path) -> None:
    """postconf -n, and postfix check (root only), with no warnings at all."""
    for command in (["postconf", "-c", str(config), "-n"], ["postconf", "-c", str(config), "-M"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr + result.stdout, result.stderr
    if os.geteuid() != 0:
        skip_or_fail("postfix check on a private instance needs root")
    shutil.chown(root / "data", "postfix")
    result = subprocess.run(
        [postfix_support.POSTFIX, "-c", str(config), "check"], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output and "fatal" not in output, output


def postconf(config: Path, *args: str) -> str:
    result = subprocess.run(
        ["postconf", "-c", str(config), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def service_options(master_cf: str, service: str) -> dict[str, str]:
    """The -o name=value options of one master.cf entry."""
    options: dict[str, str] = {}
    inside = False
    for line in master_cf.splitlines():
        if not line[:1].isspace():
            inside = line.split()[:1] == [service]
            continue
        stripped = line.strip()
        if inside and stripped.startswith("-o "):
            name, _, value = stripped[3:].partition("=")
            options[name] = value
    return options


def test_postfix_after_queue_snippets_pass_postfix_check(postfix_dir: Path) -> None:
    snippet = DEPLOY / "postfix" / "after-queue"
    config = write_postfix_config(
        postfix_dir,
        (snippet / "main.cf").read_text(encoding="utf-8"),
        POSTFIX_DIST_MASTER.read_text(encoding="utf-8") + (snippet / "master.cf").read_text(encoding="utf-8"),
    )
    defaults = Settings()
    gateway_port = port_of(defaults.smtp.listen)
    reinject_port = urlsplit(defaults.next_hop.url).port
    assert postconf(config, "-h", "content_filter") == f"dlp-gateway:[127.0.0.1]:{gateway_port}"
    assert postconf(config, "-M", "dlp-gateway/unix").split()[7] == "smtp"
    assert postconf(config, "-P", "dlp-gateway/unix/smtp_send_xforward_command") == (
        "dlp-gateway/unix/smtp_send_xforward_command = yes"
    )
    reinject = f"127.0.0.1:{reinject_port}/inet"
    assert postconf(config, "-M", reinject).split()[7] == "smtpd"
    assert postconf(config, "-P", f"{reinject}/content_filter") == f"{reinject}/content_filter ="
    assert "no_header_body_checks" in postconf(config, "-P", f"{reinject}/receive_override_options")
    assert postconf(config, "-P", f"{reinject}/smtpd_authorized_xforward_hosts").endswith("127.0.0.0/8")
    postfix_ok(config, postfix_dir)


def test_postfix_after_queue_snippet_says_what_the_end_to_end_test_runs() -> None:
    """tests/postfix_support.py runs the real thing; the snippet for /etc/postfix must
    set at least the same options on the filter transport and the re-injection smtpd."""
    ours = (DEPLOY / "postfix" / "after-queue" / "master.cf").read_text(encoding="utf-8")
    theirs = postfix_support.MASTER_CF
    pairs = [("dlp-gateway", "dlpfilter"), ("127.0.0.1:10026", "127.0.0.1:{reinject}")]
    for our_service, their_service in pairs:
        mine, tested = service_options(ours, our_service), service_options(theirs, their_service)
        assert tested, their_service
        for name, value in tested.items():
            assert name in mine, f"{our_service}: -o {name} missing"
            assert mine[name] == value, f"{our_service}: -o {name}={mine[name]} vs tested {value}"


def test_postfix_before_queue_snippets_pass_postfix_check(postfix_dir: Path) -> None:
    snippet = DEPLOY / "postfix" / "before-queue"
    # The snippet replaces the stock port-25 smtpd entry.
    stock = without_service(POSTFIX_DIST_MASTER.read_text(encoding="utf-8"), "smtp", "inet")
    assert not re.search(r"^smtp\s+inet", stock, re.M)
    config = write_postfix_config(
        postfix_dir,
        (snippet / "main.cf").read_text(encoding="utf-8"),
        stock + (snippet / "master.cf").read_text(encoding="utf-8"),
    )
    gateway_port = port_of(Settings().smtp.listen)
    for service in ("smtp/inet", "submission/inet"):
        assert postconf(config, "-P", f"{service}/smtpd_proxy_filter") == (
            f"{service}/smtpd_proxy_filter = 127.0.0.1:{gateway_port}"
        )
    # No speed_adjust: the gateway answers RCPT per recipient, as its next hop does.
    assert "speed_adjust" not in postconf(config, "-P")
    assert postconf(config, "-h", "content_filter") == "", "before-queue must not also set content_filter"
    assert postconf(config, "-P", "127.0.0.1:10026/inet/smtpd_proxy_filter").endswith("=")
    # The filter answers after scan + next hop; the proxy must wait at least that long.
    timeout = postconf(config, "-h", "smtpd_proxy_timeout")
    defaults = Settings()
    assert int(timeout.rstrip("s")) > defaults.scan.timeout_s + defaults.next_hop.timeout_s
    postfix_ok(config, postfix_dir)


def test_compose_postfix_config_passes_postfix_check(postfix_dir: Path) -> None:
    folder = COMPOSE / "postfix"
    # As postfix/Dockerfile builds it: stock master.cf + ours, chroot off everywhere.
    config = write_postfix_config(
        postfix_dir,
        (folder / "main.cf").read_text(encoding="utf-8").replace("maillog_file = /dev/stdout\n", ""),
        POSTFIX_DIST_MASTER.read_text(encoding="utf-8") + (folder / "master.cf").read_text(encoding="utf-8"),
    )
    postconf(config, "-F", "*/*/chroot = n")
    assert postconf(config, "-h", "content_filter") == "dlp-gateway:[dlp-gateway]:10025"
    assert postconf(config, "-P", "10026/inet/content_filter") == "10026/inet/content_filter ="
    # The same filter transport as the after-queue snippet.
    after_queue = (DEPLOY / "postfix" / "after-queue" / "master.cf").read_text(encoding="utf-8")
    compose_master = (folder / "master.cf").read_text(encoding="utf-8")
    assert service_options(compose_master, "dlp-gateway") == service_options(after_queue, "dlp-gateway")
    postfix_ok(config, postfix_dir)
