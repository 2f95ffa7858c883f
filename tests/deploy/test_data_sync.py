"""deploy/kubernetes/components/data-sync: the example overlay with the component renders (and
validates: test_kubernetes.py renders it too) into a Deployment whose pods fill an emptyDir with
`data sync --once` before the service starts and keep it current with a native sidecar, both as
restricted as the service; the service serves that table alone. Rollouts and drains go by
percentages. scripts/publish-bins.py writes a manifest the real binary's `data sync` applies."""

import subprocess
import sys

import pytest

from manifests import flags_of, of_kind
from support import BASE, ROOT


@pytest.fixture(scope="module")
def pod(renders) -> dict:
    deployments = of_kind(renders.objects("data-sync"), "Deployment")
    assert len(deployments) == 1
    return deployments[0]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def init(pod) -> dict:
    return {c["name"]: c for c in pod.get("initContainers", [])}


def test_the_once_updater_runs_first_then_the_sidecar(pod):
    names = [c["name"] for c in pod["initContainers"]]
    assert names == ["data-sync-init", "data-sync"], names
    once, sidecar = pod["initContainers"]
    assert once["args"][:3] == ["data", "sync", "--once"], once["args"]
    assert "restartPolicy" not in once, "an init container that ends"
    assert sidecar["restartPolicy"] == "Always", "a native sidecar"
    assert "--once" not in sidecar["args"]
    assert any(a.startswith("--metrics-listen=0.0.0.0:") for a in sidecar["args"]), sidecar["args"]


def test_updaters_are_as_restricted_as_the_service_and_have_resources(pod, init):
    service = pod["containers"][0]
    for container in init.values():
        assert container["securityContext"] == service["securityContext"], container["name"]
        assert container["resources"]["requests"] and container["resources"]["limits"], container["name"]
        assert container["image"] == service["image"]


def test_the_sidecar_is_probed_on_its_metrics(init):
    sidecar = init["data-sync"]
    port = next(p["containerPort"] for p in sidecar["ports"])
    for probe in ("livenessProbe", "startupProbe"):
        assert sidecar[probe]["httpGet"] == {"path": "/metrics", "port": port}, sidecar[probe]


def test_every_updater_names_its_source_and_destination(renders, init):
    config_maps = {c["metadata"]["name"]: c for c in of_kind(renders.objects("data-sync"), "ConfigMap")}
    for container in init.values():
        (ref,) = container["envFrom"]
        data = config_maps[ref["configMapRef"]["name"]]["data"]
        assert data["CARD_LOOKUP_SYNC_SOURCE"].startswith("https://"), data
        assert data["CARD_LOOKUP_SYNC_DEST"] == "/var/lib/card-lookup/bins", data


def test_the_service_serves_the_synced_table_alone(pod, init):
    service = pod["containers"][0]
    flags = flags_of(service["args"])
    assert "--no-default-data" in flags, service["args"]
    (bin_data,) = flags["--bin-data"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = next(m for m in service["volumeMounts"] if bin_data.startswith(m["mountPath"] + "/"))
    assert mount.get("readOnly") is True
    assert "emptyDir" in volumes[mount["name"]], volumes[mount["name"]]
    for container in init.values():
        assert any(m["name"] == mount["name"] and "readOnly" not in m for m in container["volumeMounts"])


def test_rollouts_surge_a_quarter_and_the_pdb_is_a_percentage():
    import yaml

    deployment = yaml.safe_load((BASE / "deployment.yaml").read_text())
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxSurge"] == "25%" and rolling["maxUnavailable"] == 0, rolling
    pdb = yaml.safe_load((BASE / "pdb.yaml").read_text())
    assert str(pdb["spec"]["maxUnavailable"]).endswith("%"), pdb["spec"]


def test_a_published_manifest_is_applied_by_the_binary(binary, tmp_path):
    """publish-bins.py's manifest, served as a file:// origin, applied by `data sync --once`."""
    table = tmp_path / "bank.csv"
    table.write_text("BIN,BankName,CardType,CardOrg\n622848,PUBLISHED BANK,借记卡,银联\n")
    published = tmp_path / "publish"
    subprocess.run(
        [sys.executable, ROOT / "scripts/publish-bins.py", "--out", published, f"bins.csv={table}"],
        check=True,
        capture_output=True,
    )
    dest = tmp_path / "data"
    result = subprocess.run(
        [binary, "data", "sync", "--once", "--source", f"file://{published}/manifest.json", "--dest", dest],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (dest / "bins.csv").read_text() == table.read_text()
    assert (dest / ".manifest.json").is_file()


def test_the_updaters_metrics_are_scraped_by_prometheus_only(renders, init):
    """The fleet rules need each pod's updater metrics with the service's job and pod labels:
    the same Service and ServiceMonitor, and the NetworkPolicy's Prometheus rule."""
    objects = renders.objects("data-sync")
    port = next(p["containerPort"] for p in init["data-sync"]["ports"])
    (service,) = [s for s in of_kind(objects, "Service") if s["metadata"]["name"] == "card-lookup"]
    (entry,) = [p for p in service["spec"]["ports"] if p["targetPort"] == port]
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert any(e["port"] == entry["name"] for e in monitor["spec"]["endpoints"]), monitor["spec"]
    (policy,) = of_kind(objects, "NetworkPolicy")
    rules = [r for r in policy["spec"]["ingress"] if {"port": port, "protocol": "TCP"} in r["ports"]]
    assert len(rules) == 1, policy["spec"]["ingress"]
    assert any(
        f.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "prometheus"
        for f in rules[0]["from"]
    ), rules
