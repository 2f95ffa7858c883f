"""Reading the rendered Kubernetes objects: the Deployment's container and its flags, the BIN
data it mounts from a ConfigMap, the TLS settings of the TLS patch, and the Deployment turned
into a command line for this machine (addresses on loopback, volumes as local directories laid
out as the kubelet lays them out)."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import kubelet

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# Custom resources: kubernetes-validate has no schema for them; test_kubernetes.py checks the
# ServiceMonitor's references itself.
CUSTOM_RESOURCE_API_VERSIONS = {"monitoring.coreos.com/v1"}
TLS_FLAGS = ("--tls-cert", "--tls-key", "--tls-client-ca")


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def matches(selector: dict | None, labels: dict) -> bool:
    """A non-empty matchLabels selector that `labels` satisfy."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def flags_of(args: list[str]) -> dict[str, list[str]]:
    """`--name=value` arguments by name; a flag given twice has two values."""
    flags: dict[str, list[str]] = {}
    for a in args:
        k, _, v = a.partition("=")
        flags.setdefault(k, []).append(v)
    return flags


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def seconds(text: str | None) -> float | None:
    """A duration flag's value (10s, 500ms, 1m) in seconds; the binary's default is 10s."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text or "10s")
    if not m:
        return None
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60}[m[2]]


@dataclass
class Workload:
    """The one Deployment of a render, and its first container."""

    deployment: dict

    @property
    def name(self) -> str:
        return self.deployment["metadata"]["name"]

    @property
    def spec(self) -> dict:
        return self.deployment["spec"]

    @property
    def pod(self) -> dict:
        return self.spec["template"]["spec"]

    @property
    def pod_labels(self) -> dict:
        return self.spec["template"]["metadata"]["labels"]

    @property
    def container(self) -> dict:
        return self.pod["containers"][0]

    @property
    def ports(self) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}

    @property
    def args(self) -> list[str]:
        return self.container.get("args", [])

    @property
    def flags(self) -> dict[str, list[str]]:
        return flags_of(self.args)

    def flag(self, name: str, default: str | None = None) -> str | None:
        return self.flags.get(name, [default])[0]

    @property
    def volumes(self) -> dict[str, dict]:
        return {v["name"]: v for v in self.pod.get("volumes", [])}

    @property
    def mounts(self) -> list[dict]:
        return self.container.get("volumeMounts", [])

    @property
    def run_as_user(self):
        csc, psc = self.container.get("securityContext", {}), self.pod.get("securityContext", {})
        return csc.get("runAsUser", psc.get("runAsUser"))


@dataclass
class BinData:
    """One --bin-data file: where the container reads it, and the ConfigMap that holds it."""

    path: str
    mount: dict | None = None
    configmap: str | None = None
    key: str | None = None
    content: dict[str, bytes] = field(default_factory=dict)

    @property
    def in_configmap(self) -> bool:
        return self.key is not None and self.key in self.content


def bin_data(workload: Workload, objects: list[dict]) -> list[BinData]:
    """Each --bin-data path, matched with the ConfigMap volume mounted over it (if any)."""
    configmaps = {o["metadata"]["name"]: o for o in of_kind(objects, "ConfigMap")}
    found = []
    for path in workload.flags.get("--bin-data", []):
        data = BinData(path)
        for m in workload.mounts:
            mount_path = m["mountPath"].rstrip("/") + "/"
            volume = workload.volumes.get(m["name"], {})
            if path.startswith(mount_path) and "configMap" in volume:
                cm = configmaps.get(volume["configMap"]["name"]) or {}
                content = {k: x.encode() for k, x in cm.get("data", {}).items()}
                content.update({k: base64.b64decode(x) for k, x in cm.get("binaryData", {}).items()})
                data = BinData(path, m, volume["configMap"]["name"], path[len(mount_path) :], content)
                break
        found.append(data)
    return found


def listen_setting(container: dict, flag: str) -> str | None:
    """The address a container's --FLAG (or its CARD_LOOKUP_ twin) gives, if any."""
    for a in container.get("args", []):
        k, _, v = a.partition("=")
        if k == flag:
            return v
    twin = "CARD_LOOKUP_" + flag.removeprefix("--").upper().replace("-", "_")
    return next((e.get("value") for e in container.get("env", []) if e["name"] == twin), None)


def tls_settings(container: dict) -> dict[str, str]:
    """The container's flags, with the CARD_LOOKUP_TLS_* variables as the flags they stand for
    (a flag given on the command line wins, as in the binary)."""
    settings = {}
    for a in container.get("args", []):
        k, _, v = a.partition("=")
        settings[k] = v
    for e in container.get("env", []):
        flag = "--" + e["name"].removeprefix("CARD_LOOKUP_").lower().replace("_", "-")
        if e["name"].startswith("CARD_LOOKUP_TLS_") and flag not in settings and "value" in e:
            settings[flag] = e["value"]
    return settings


# What the container listens on becomes an ephemeral loopback port here.
LOOPBACK_FLAGS = ("--listen", "--metrics-listen", "--admin-listen", "--health-listen")
LOOPBACK_ENV = (
    "CARD_LOOKUP_LISTEN",
    "CARD_LOOKUP_METRICS_LISTEN",
    "CARD_LOOKUP_ADMIN_LISTEN",
    "CARD_LOOKUP_HEALTH_LISTEN",
)


@dataclass
class LiveConfig:
    """A container's arguments and environment for a run on this machine."""

    args: list[str]
    env: dict[str, str]
    bins: Path | None = None  # the local --bin-data file (a symlink through ..data)
    secret_dirs: dict[str, Path] = field(default_factory=dict)  # mount path -> local directory


def live_config(workload: Workload, files: list[BinData], base: Path) -> LiveConfig:
    """The container's arguments for this machine: addresses on ephemeral loopback ports, the
    ConfigMap's files written under `base` as the kubelet lays out a ConfigMap volume
    (KEY -> ..data/KEY, ..data -> a timestamped directory), so an update can be swapped in as
    the kubelet does it, and paths into Secret volumes pointing under `base` (the caller fills
    those directories in)."""
    container = workload.container
    secret_dirs = {}
    for m in container.get("volumeMounts", []):
        if "secret" in workload.volumes.get(m["name"], {}):
            secret_dirs[m["mountPath"].rstrip("/")] = base / m["mountPath"].lstrip("/")

    def local(path: str) -> str:
        for mount, directory in secret_dirs.items():
            if path.startswith(mount + "/"):
                return str(directory / path[len(mount) + 1 :])
        return path

    by_path = {f.path: f for f in files if f.in_configmap}
    args, bins = [], None
    for a in container.get("args", []):
        k, _, v = a.partition("=")
        if k in LOOPBACK_FLAGS:
            args.append(f"{k}=127.0.0.1:0")
        elif k == "--bin-data" and v in by_path:
            data = by_path[v]
            directory = base / data.mount["mountPath"].lstrip("/")
            kubelet.lay_out(directory, data.content)
            bins = directory / data.key
            args.append(f"{k}={bins}")
        elif v:
            # A file in a Secret (--tls-*, --redis-password-file): the local copy.
            args.append(f"{k}={local(v)}")
        else:
            args.append(a)
    env = {}
    for e in container.get("env", []):
        if "value" not in e:
            continue
        if e["name"] in LOOPBACK_ENV:
            env[e["name"]] = "127.0.0.1:0"
        else:
            env[e["name"]] = local(e["value"]) if e["name"].startswith("CARD_LOOKUP_TLS") else e["value"]
    os.makedirs(base, exist_ok=True)
    return LiveConfig(args, env, bins, secret_dirs)
