"""deploy/kubernetes/components/quotas: the example overlay with the component renders (and
validates: test_kubernetes.py renders it too) into the service with the seed's rule
(per-shopper=20/h:subject) counted in the component's Valkey through its Service, the password
from one Secret mounted in both and written in no argument or variable; the Valkey is one
replica, unpersisted, as restricted as the service, and reachable from card-lookup only. Live:
the Valkey Deployment's own command (redis-server standing in) and the service with the
rendered flags give one shopper exactly 20 calls, and count the rest."""

import base64
import re
import socket

import pytest
import yaml

from manifests import matches, of_kind
from support import ROOT

STORE = "card-lookup-redis"


@pytest.fixture(scope="module")
def service(quota_workloads):
    return quota_workloads["card-lookup"]


@pytest.fixture(scope="module")
def store(quota_workloads):
    return quota_workloads[STORE]


def secret_mount(workload, path: str) -> tuple[dict, dict]:
    """The read-only Secret volume mount a file is in, and its volume."""
    mount = next(m for m in workload.mounts if path.startswith(m["mountPath"].rstrip("/") + "/"))
    volume = workload.volumes[mount["name"]]
    assert "secret" in volume and mount.get("readOnly") is True and not mount.get("subPath"), (mount, volume)
    return mount, volume


def test_two_deployments_the_service_and_its_store(quota_workloads):
    assert set(quota_workloads) == {"card-lookup", STORE}, set(quota_workloads)


def test_the_service_has_the_seeds_rule_at_the_components_redis(service, quota_objects):
    flags = service.flags
    assert flags["--quota"] == ["per-shopper=20/h:subject"], flags.get("--quota")
    (url,) = flags["--redis-url"]
    found = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)", url)
    assert found, url
    (svc,) = [s for s in of_kind(quota_objects, "Service") if s["metadata"]["name"] == found[1]]
    assert any(p["port"] == int(found[2]) for p in svc["spec"]["ports"]), svc["spec"]["ports"]


def test_both_mount_one_generated_secret_and_no_password_is_written(service, store, quota_objects):
    """The password file of --redis-password-file and the store's are one Secret's, hashed by
    the overlay's generator (a new password rolls both); neither Deployment names the password."""
    (path,) = service.flags["--redis-password-file"]
    _, volume = secret_mount(service, path)
    name = volume["secret"]["secretName"]
    assert name.startswith(STORE + "-") and name != STORE, f"{name}: not the generator's hashed name"
    store_secrets = [v["secret"]["secretName"] for v in store.volumes.values() if "secret" in v]
    assert store_secrets == [name], store_secrets
    (secret,) = [s for s in of_kind(quota_objects, "Secret") if s["metadata"]["name"] == name]
    encoded = secret["data"]["password"]
    password = base64.b64decode(encoded).decode()
    for workload in (service, store):
        container = workload.container
        text = repr(container.get("command", [])) + repr(container.get("args", [])) + repr(container.get("env", []))
        assert password not in text and encoded not in text, workload.name
        from_secrets = [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
        assert not from_secrets and not container.get("envFrom"), workload.name


def test_the_component_ships_no_password():
    """The Secret comes from the environment's overlay; the component holds no Secret or
    password file, and .gitignore keeps an overlay's password file out of the repository."""
    component = ROOT / "deploy/kubernetes/components/quotas"
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text())
    assert "secretGenerator" not in kustomization, kustomization
    objects = [o for p in component.glob("*.yaml") for o in yaml.safe_load_all(p.read_text()) if o]
    assert not [o for o in objects if o.get("kind") == "Secret"]
    assert {p.name for p in component.iterdir()} == {"kustomization.yaml", "deployment-patch.yaml", "redis.yaml"}
    assert "/deploy/kubernetes/overlays/*/redis-password" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_store_is_one_unpersisted_replica_replaced_by_recreate(store):
    """Two servers behind the Service would each count part of the calls; counts lost in a
    restart only forgive calls already made."""
    assert store.spec["replicas"] == 1 and store.spec["strategy"] == {"type": "Recreate"}, store.spec
    script = " ".join(store.container["command"])
    assert "--save ''" in script and "--appendonly no" in script, script
    assert re.search(r"--maxmemory \d+mb --maxmemory-policy volatile-ttl", script), script


def test_the_store_is_as_restricted_as_the_service(service, store):
    ours, theirs = store.container["securityContext"], service.container["securityContext"]
    assert {k: v for k, v in ours.items() if k not in ("runAsUser", "runAsGroup")} == {
        k: v for k, v in theirs.items() if k not in ("runAsUser", "runAsGroup")
    }
    assert ours["runAsUser"] != 0 and store.pod["securityContext"]["runAsNonRoot"] is True
    assert store.pod.get("automountServiceAccountToken") is False
    resources = store.container["resources"]
    assert resources["requests"] and resources["limits"]["memory"], resources


def test_only_card_lookup_reaches_the_store(store, service, quota_objects):
    (policy,) = [p for p in of_kind(quota_objects, "NetworkPolicy") if p["metadata"]["name"] == STORE]
    spec = policy["spec"]
    assert matches(spec["podSelector"]["matchLabels"], store.pod_labels)
    assert not matches(spec["podSelector"]["matchLabels"], service.pod_labels)
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"} and not spec.get("egress"), spec
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "redis", "protocol": "TCP"}], rule
    (source,) = rule["from"]
    assert set(source) == {"podSelector"} and matches(source["podSelector"]["matchLabels"], service.pod_labels)
    # The base's own policy must not select the store (it would admit payment clients to it).
    (base_policy,) = [p for p in of_kind(quota_objects, "NetworkPolicy") if p["metadata"]["name"] == "card-lookup"]
    assert not matches(base_policy["spec"]["podSelector"]["matchLabels"], store.pod_labels)


def test_the_store_refuses_a_client_without_the_password(quota_store):
    host, port = quota_store.address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"SET cardlookup:probe 1\r\n")
        answer = s.recv(256)
    assert answer.startswith(b"-NOAUTH"), answer


def test_one_shopper_gets_exactly_20_calls_an_hour(quota_run):
    ok = [a for a in quota_run.one_shopper if "Code:" not in a]
    assert len(ok) == 20, quota_run.one_shopper
    refused = quota_run.one_shopper[-1]
    assert "Code: ResourceExhausted" in refused and "per-shopper" in refused, refused
    assert "shopper-1" not in refused


def test_another_shopper_and_an_unkeyed_call_pass(quota_run):
    for answer in (quota_run.other_shopper, quota_run.no_subject):
        assert "Code:" not in answer, answer


def test_the_refusal_and_the_unkeyed_call_are_counted(quota_run):
    metrics = quota_run.metrics
    assert re.search(r'^cardlookup_quota_refused_total\{quota="per-shopper"[^}]*\} 1$', metrics, re.M), metrics
    assert re.search(r'^cardlookup_quota_unkeyed_total\{quota="per-shopper"[^}]*\} 1$', metrics, re.M)
    assert re.search(r"^cardlookup_quota_backend_up(\{[^}]*\})? 1$", metrics, re.M)
    assert not re.search(r"^cardlookup_quota_backend_errors_total\{[^}]*\} [1-9]", metrics, re.M)
    assert "shopper-1" not in metrics
