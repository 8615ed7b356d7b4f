"""deploy/: every NATS config passes the real server's check, the per-service users can do their
job and nothing else, TLS works with the generated test CA, compose and k8s files give each service
what it needs to start (its port variable, keys, store, bus) and no key that is not its own."""

import asyncio
import re
import shutil
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import nats
import pytest
from nats.js.api import ConsumerConfig

from contracts import ContractEvent, encode, registry
from services.common.bus import Bus
from services.common.natsserver import binary, free_port, wait_for_port
from services.ledger.audit.sources import read_stream

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
USERS = ("households", "relief", "ledger", "auditor", "admin", "sys")
PASSWORDS = {f"NATS_{user.upper()}_PASSWORD": f"pw-{user}-{uuid.uuid4().hex[:6]}" for user in USERS}
CONFIGS = sorted(DEPLOY.rglob("*.conf"))


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory) -> Path:
    """A working directory holding var/tls/{ca,server,server-key}.pem, as the TLS configs expect."""
    work = tmp_path_factory.mktemp("deploy")
    subprocess.run([sys.executable, str(DEPLOY / "make_certs.py"), str(work / "var" / "tls")],
                   check=True, capture_output=True)
    return work


def check(config: Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([binary(), "-t", "-c", str(config)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30)


def test_there_are_configs_for_every_layout():
    names = {str(c.relative_to(DEPLOY / "nats")) for c in CONFIGS}
    assert {"single.conf", "single-auth.conf", "accounts.conf", "compose.conf", "k8s.conf",
            "cluster/n1.conf", "cluster/n2.conf", "cluster/n3.conf",
            "tls/single.conf", "tls/n1.conf", "tls/n2.conf", "tls/n3.conf"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: str(c.relative_to(DEPLOY)))
def test_nats_config_is_accepted_by_nats_server(config, tls_dir):
    done = check(config, tls_dir, {**PASSWORDS, "NATS_SERVER_NAME": "nats-1"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_missing_password_stops_the_server(tls_dir):
    env = {k: v for k, v in PASSWORDS.items() if k != "NATS_LEDGER_PASSWORD"}
    done = check(DEPLOY / "nats" / "cluster" / "n1.conf", tls_dir, env)
    assert done.returncode != 0 and "NATS_LEDGER_PASSWORD" in done.stderr


class Probe(ContractEvent):
    subject: ClassVar[str] = "households.test.probe.v1"
    note: str


@pytest.fixture
def probe_contract():
    registry[Probe.type_name()] = Probe
    yield
    registry.pop(Probe.type_name())


def start_server(tmp_path: Path, extra: str = "") -> tuple[subprocess.Popen, int]:
    """A server on a free port with deploy/nats/accounts.conf (copied beside its config)."""
    shutil.copy(DEPLOY / "nats" / "accounts.conf", tmp_path / "accounts.conf")
    port = free_port()
    config = tmp_path / "server.conf"
    config.write_text(f'listen: 127.0.0.1:{port}\njetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
                      f'{extra}\ninclude "accounts.conf"\n')
    process = subprocess.Popen([binary(), "-c", str(config)], env=PASSWORDS,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, port


@pytest.fixture
def auth_server(tmp_path):
    process, port = start_server(tmp_path)
    yield lambda user, scheme="nats": f"{scheme}://{user}:{PASSWORDS[f'NATS_{user.upper()}_PASSWORD']}@127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


async def connect(url: str, errors: list[str] | None = None):
    async def on_error(error):
        if errors is not None:
            errors.append(str(error))

    return await nats.connect(url, error_cb=on_error, max_reconnect_attempts=0)


async def violated_on(nc, errors: list[str], what: str = "publish") -> bool:
    """The server's -ERR reaches error_cb asynchronously: wait for it (2 s at most), then close."""
    await nc.flush()
    for _ in range(40):
        if any(f"permissions violation for {what}" in e.lower() for e in errors):
            break
        await asyncio.sleep(0.05)
    await nc.close()
    return any(f"permissions violation for {what}" in e.lower() for e in errors)


@pytest.mark.nats
async def test_each_service_user_does_its_job_and_nothing_else(auth_server, probe_contract):
    # The real Bus (ensure_streams on connect) works with each service's restricted user.
    buses = {name: Bus(auth_server(name), name) for name in ("households", "relief", "ledger")}
    for bus in buses.values():
        await bus.connect()
    try:
        subject, payload, headers = encode(Probe(event_id=uuid.uuid4(), occurred_at="2026-01-01T00:00:00Z",
                                                 source_id=uuid.uuid4(), source_version=1, note="hello"))
        await buses["households"].js.publish(subject, payload, headers=headers)

        # relief consumes households.> through its own durable and publishes relief.>
        relief_js = buses["relief"].js
        sub = await relief_js.pull_subscribe("households.>", durable="relief-households", stream="HOUSEHOLDS",
                                             config=ConsumerConfig(filter_subject="households.>"))
        [message] = await sub.fetch(1, timeout=5)
        assert message.subject == subject
        await message.ack()
        assert (await relief_js.publish("relief.test.ok.v1", b"{}")).stream == "RELIEF"

        # ... but may not publish households.> (a permission violation, nothing stored)
        errors: list[str] = []
        relief = await connect(auth_server("relief"), errors)
        with pytest.raises(Exception):  # noqa: B017 - no reply: nats-py times out or finds no responders
            await relief.jetstream(timeout=1).publish("households.test.forged.v1", b"{}")
        assert await violated_on(relief, errors, 'publish to "households.test.forged.v1"'), errors
        admin = await connect(auth_server("admin"))
        assert (await admin.jetstream().stream_info("HOUSEHOLDS")).state.messages == 1
        await admin.close()

        # ledger never reads households (personal data stays with relief), nor another durable
        for user, stream, durable in (("ledger", "HOUSEHOLDS", "ledger-households"),
                                      ("relief", "RELIEF", "relief-own")):
            errors = []
            nc = await connect(auth_server(user), errors)
            with pytest.raises(Exception):  # noqa: B017
                await nc.jetstream(timeout=1).pull_subscribe(">", durable=durable, stream=stream)
            assert await violated_on(nc, errors), errors
    finally:
        for bus in buses.values():
            await bus.close()

    # the auditor reads every stream with relief-audit's own reader, and writes nothing
    events = await read_stream(auth_server("auditor"), "HOUSEHOLDS")
    assert [e.note for e in events] == ["hello"]
    errors = []
    auditor = await connect(auth_server("auditor"), errors)
    await auditor.publish("ledger.test.forged.v1", b"{}")
    assert await violated_on(auditor, errors), errors


@pytest.mark.nats
async def test_tls_with_the_generated_ca(tls_dir, tmp_path, monkeypatch):
    certs = tls_dir / "var" / "tls"
    process, port = start_server(tmp_path, f'tls {{ cert_file: "{certs / "server.pem"}"\n'
                                           f'  key_file: "{certs / "server-key.pem"}" }}')
    try:
        url = f"tls://relief:{PASSWORDS['NATS_RELIEF_PASSWORD']}@127.0.0.1:{port}"
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        nc = await nats.connect(url, tls=context, max_reconnect_attempts=0)
        assert nc.is_connected
        await nc.close()
        # Services need no code change: nats-py's default context honours SSL_CERT_FILE.
        monkeypatch.setenv("SSL_CERT_FILE", str(certs / "ca.pem"))
        bus = Bus(url, "relief")
        await bus.connect()
        assert bus.connected
        await bus.close()
        # ... and without the CA the server is not trusted
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(Exception):  # noqa: B017
            await nats.connect(url, max_reconnect_attempts=0, connect_timeout=2, allow_reconnect=False)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_private_keys_are_never_tracked():
    tracked = subprocess.run(["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True).stdout
    assert not [p for p in tracked.split() if p.endswith((".pem", ".key")) or p.endswith("/.env")]


# What each service needs to start (services/common/settings.py, services/web/settings.py,
# services/*/__main__.py), checked in docker-compose.yml and k8s/*.yaml as written.
APPS = {"households": 8001, "relief": 8002, "ledger": 8003, "web": 8000}
BACKENDS = ("households", "relief", "ledger")
POSTGRES = ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD")
ONLY = {"PERSONAL_DATA_KEY": "households", "LEDGER_SIGNING_KEY": "ledger"}  # a key no other service may hold


def port_variable(name: str) -> str:
    return f"{name.upper()}_PORT"


def test_the_port_variables_are_the_ones_the_services_read():
    from services.common.settings import Settings
    from services.web.settings import WebSettings

    for name in BACKENDS:
        assert Settings.from_env(name, {port_variable(name): "9123"}).port == 9123
    assert WebSettings.from_env({port_variable("web"): "9123"}).port == 9123
    assert WebSettings.from_env({"HOUSEHOLDS_URL": "http://households:8001"}).upstreams["households"] == \
        "http://households:8001"


def dockerfile_env() -> dict[str, str]:
    text = (DEPLOY / "Dockerfile").read_text()
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
    return env


def test_the_image_starts_the_service_through_serve_on_all_interfaces():
    import inspect

    from services.common import serve

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "pip install --no-cache-dir -r requirements.lock" in dockerfile
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert "python -m services.${SERVICE" in cmd and "uvicorn" not in cmd  # serve(): access-log filter
    assert dockerfile_env()["BIND_HOST"] == "0.0.0.0" and "BIND_HOST" in inspect.getsource(serve)
    for name in APPS:  # every service is started with `python -m services.<name>` through serve()
        assert "serve(" in (ROOT / "services" / name / "__main__.py").read_text()


def target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def check_service_env(name: str, env: dict[str, str], where: str) -> None:
    """`env`: the container's environment (values as written); BIND_HOST comes from the image."""
    assert env.get("SERVICE") == name, where
    assert env.get(port_variable(name)) == str(APPS[name]), f"{where}: {port_variable(name)}"
    assert env.get("BIND_HOST", dockerfile_env()["BIND_HOST"]) == "0.0.0.0", where
    for key, owner in ONLY.items():
        assert (key in env) == (name == owner), f"{where}: {key} belongs to {owner} only"
    if name == "web":  # no store, no bus, no keys
        assert not {"NATS_URL", "PERSISTENCE_MODULE", "AUTH_KEYS_DIR", *POSTGRES} & set(env), where
        return
    assert env.get("AUTH_KEYS_DIR"), f"{where}: AUTH_KEYS_DIR"
    assert env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres", where
    assert env.get("NATS_REPLICAS") == "3", where
    assert all(env.get(key) for key in POSTGRES), f"{where}: {[k for k in POSTGRES if not env.get(k)]}"
    urls = env.get("NATS_URL", "").split(",")
    assert len(urls) == 3 and all(u.startswith(f"nats://{name}:") for u in urls), f"{where}: NATS_URL"


def test_compose_has_three_nats_nodes_postgres_and_the_services():
    yaml = pytest.importorskip("yaml")
    text = (DEPLOY / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {"nats-1", "nats-2", "nats-3", "postgres", *APPS}
    for node in ("nats-1", "nats-2", "nats-3"):
        assert services[node]["command"] == ["nats-server", "-c", "/etc/nats/compose.conf"]
        env = services[node]["environment"]
        assert env["NATS_SERVER_NAME"] == node
        # the six passwords of accounts.conf and nothing else from .env (no keys on the NATS nodes)
        assert set(env) == {*PASSWORDS, "NATS_SERVER_NAME"} and "env_file" not in services[node]
    declared = set(compose["volumes"])
    for name, port in APPS.items():
        service, env = services[name], services[name]["environment"]
        check_service_env(name, env, f"compose {name}")
        assert service["build"]["dockerfile"] == "deploy/Dockerfile" and "command" not in service
        assert f"127.0.0.1:{port}:{port}" in service["ports"]
        assert env["PORT"] == str(port) and "os.environ['PORT']" in service["healthcheck"]["test"][-1]
        mounts = {v.split(":")[1]: v for v in service.get("volumes", [])}
        assert {v.split(":")[0] for v in mounts.values()} <= declared
        if name in BACKENDS:
            assert [u.split("@")[1] for u in env["NATS_URL"].split(",")] == ["nats-1:4222", "nats-2:4222", "nats-3:4222"]
            assert env["POSTGRES_HOST"] in services
            keys = mounts[env["AUTH_KEYS_DIR"]]  # the key ring: households writes it, the others read it
            assert keys.startswith("auth-keys:") and keys.endswith(":ro") == (name != "households"), keys
        else:
            assert not mounts
    for key in ONLY:  # compose refuses to start without the keys, rather than run on a generated one
        assert f"${{{key}:?" in text
    for name, url_of in (("web", ("HOUSEHOLDS_URL", "RELIEF_URL", "LEDGER_URL")), ("relief", ("HOUSEHOLDS_URL",))):
        for variable in url_of:
            host, port = target(services[name]["environment"][variable])
            assert host == variable.removesuffix("_URL").lower() and host in services, variable
            assert port == APPS[host], variable
    # every ${VAR} compose reads is in env.example, the keys empty there (compose stops until they are set)
    example = dict(line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert set(re.findall(r"\$\{(\w+)", text)) == set(example)
    assert all(example[key] == "" for key in ONLY)


def test_k8s_manifests_hold_together():
    yaml = pytest.importorskip("yaml")
    docs = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert by[("StatefulSet", "nats")]["spec"]["replicas"] == 3
    assert by[("ConfigMap", "relief-settings")]["data"]["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    for name, port in APPS.items():
        pod = by[("Deployment", name)]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == "relief:latest" and "command" not in container and "args" not in container
        env = {e["name"]: e.get("value", "(from a reference)") for e in container["env"]}
        for ref in container.get("envFrom", []):
            [(kind, target_ref)] = ref.items()
            source = by[({"configMapRef": "ConfigMap", "secretRef": "Secret"}[kind], target_ref["name"])]
            env.update(source.get("data") or source.get("stringData"))
        check_service_env(name, env, f"k8s {name}")
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert by[("Service", name)]["spec"]["ports"][0]["port"] == port
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
        if name == "web":
            assert not volumes
            for variable in ("HOUSEHOLDS_URL", "RELIEF_URL", "LEDGER_URL"):
                host, url_port = target(env[variable])
                assert ("Service", host) in by and host == variable.removesuffix("_URL").lower()
                assert url_port == by[("Service", host)]["spec"]["ports"][0]["port"]
            continue
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"relief-settings", f"{name}-secrets"}
        [hosts] = {tuple(u.split("@")[1] for u in env["NATS_URL"].split(","))}
        assert hosts == ("nats-0.nats:4222", "nats-1.nats:4222", "nats-2.nats:4222")
        assert ("Service", env["POSTGRES_HOST"]) in by
        mount = mounts[env["AUTH_KEYS_DIR"]]
        keys = volumes[mount["name"]]
        if name == "households":  # the whole ring, private key included, for households alone
            assert keys["secret"]["secretName"] == "households-auth-keys"
        else:  # public keys only, from a ConfigMap nothing private goes into
            assert keys == {"name": mount["name"], "configMap": {"name": "auth-public-keys"}}
    relief_households = {e["name"]: e.get("value") for e in
                         by[("Deployment", "relief")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert target(relief_households["HOUSEHOLDS_URL"]) == ("households", 8001)
    mounted = [v for d in docs if d["kind"] == "Deployment" for v in d["spec"]["template"]["spec"].get("volumes", [])]
    assert [v["secret"]["secretName"] for v in mounted if "secret" in v] == ["households-auth-keys"]


@pytest.mark.nats
async def test_the_real_services_start_with_their_own_users(auth_server, tmp_path):
    """Each service process connects as itself, creates the streams and its durable consumers."""
    import httpx

    ports = {name: free_port() for name in ("households", "relief", "ledger")}
    processes = {}
    try:
        for name, port in ports.items():
            env = {"PATH": str(Path(sys.executable).parent), "DATA_DIR": str(tmp_path / "var"),
                   "NATS_URL": auth_server(name), f"{name.upper()}_PORT": str(port)}
            processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        async with httpx.AsyncClient() as http:
            for name, port in ports.items():
                for _ in range(200):
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert processes[name].poll() is None, processes[name].stderr.read().decode()[-2000:]
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"{name} not ready")
        admin = await connect(auth_server("admin"))
        js = admin.jetstream(timeout=5)
        for stream, durable in (("HOUSEHOLDS", "relief-households"), ("LEDGER", "relief-ledger"),
                                ("RELIEF", "ledger-relief")):
            for _ in range(50):  # consumers start right after the bus connects
                try:
                    await js.consumer_info(stream, durable)
                    break
                except nats.js.errors.NotFoundError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{durable} was not created on {stream}")
        await admin.close()
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=15)
    for name, process in processes.items():
        log = process.stderr.read().decode()
        assert "permissions violation" not in log.lower(), f"{name}: {log[-2000:]}"


@pytest.mark.parametrize("service", ["households", "relief", "ledger"])
def test_accounts_conf_covers_what_each_service_publishes_and_consumes(service):
    """Fails as soon as a service gains a subscription or a subject its NATS user does not allow."""
    import importlib

    main = importlib.import_module(f"services.{service}.main")
    text = (DEPLOY / "nats" / "accounts.conf").read_text()
    block = text.split(f"user: {service},")[1].split("user:")[0]
    for contract in getattr(main, "PUBLISHES", []):
        assert f'"{contract.subject.split(".")[0]}.>"' in block, contract.subject
    for sub in main.spec.subscriptions:
        for needed in (f"$JS.API.CONSUMER.INFO.{sub.stream}.{sub.durable}",
                       f"$JS.API.CONSUMER.CREATE.{sub.stream}.{sub.durable}.>",
                       f"$JS.API.CONSUMER.MSG.NEXT.{sub.stream}.{sub.durable}",
                       f"$JS.ACK.{sub.stream}.{sub.durable}.>", "deadletter.>"):
            assert f'"{needed}"' in block, f"{service} needs {needed}"
