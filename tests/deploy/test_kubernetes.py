"""deploy/kubernetes: the base, the example overlay and the example overlay with its TLS patch
render with kustomize; every rendered object passes kubernetes-validate --strict; and the
rendered objects fit together (selectors, ports, probes, security, shutdown timing, the BIN data
mount, the ServiceMonitor, the rate limit, the admin port, the TLS patch's Secret and probes)."""

import pytest
import yaml

import manifests
from manifests import PROBES, TLS_FLAGS, matches, of_kind, port_of, seconds
from support import KEDA_EXAMPLE, KUBERNETES_VERSION, run

RENDERS = ["base", "example", "tls", "data-sync", "quotas", "audit-trail"]


# --- kustomize and kubernetes-validate ----------------------------------------------------------


@pytest.mark.parametrize("render", RENDERS)
def test_kustomize_build(render, renders):
    """kustomize renders the base, the example overlay, and the example overlay with
    tls-patch.yaml (commented out there) applied."""
    result = renders.build(render)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("render", RENDERS)
def test_objects_validate_strict(render, renders, kubernetes_validate, tmp_path):
    """Every rendered object passes kubernetes-validate --strict against the schemas of
    Kubernetes KUBERNETES_VERSION. Custom resources (the ServiceMonitor) have no schema there;
    their references are checked below."""
    objects = renders.objects(render)
    checked, failures = [], []
    for i, d in enumerate(objects):
        if d.get("apiVersion") in manifests.CUSTOM_RESOURCE_API_VERSIONS:
            continue
        path = tmp_path / f"{i:02d}-{d['kind']}.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False))
        result = run([kubernetes_validate, "--strict", "-k", KUBERNETES_VERSION, path])
        ident = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if result.returncode == 0 and " passed for resource " in result.stdout:
            checked.append(ident)
        else:
            failures.append(f"{ident}:\n{result.stdout}")
    assert checked or failures, f"{render}: nothing rendered to validate"
    assert not failures, "\n".join(failures)


# --- the example overlay's Deployment -----------------------------------------------------------


def test_one_deployment(example_objects):
    """The overlay renders exactly one Deployment (the checks below read it)."""
    assert len(of_kind(example_objects, "Deployment")) == 1


def test_deployment_selector_matches_its_pod_labels(workload):
    assert matches(workload.spec["selector"]["matchLabels"], workload.pod_labels)


def test_deployment_leaves_the_replica_count_to_the_hpa(workload):
    """No spec.replicas beside the HPA: every apply would set a scaled-up fleet back to it."""
    assert "replicas" not in workload.spec, workload.spec.get("replicas")


def test_container_ports_are_grpc_and_metrics(workload):
    assert set(workload.ports) == {"grpc", "metrics"}, workload.ports


def test_listen_on_every_interface_at_the_grpc_port(workload):
    """--listen binds 0.0.0.0 at the grpc containerPort (probes and Services reach it)."""
    listen = workload.flag("--listen", "")
    assert listen.startswith("0.0.0.0:") and port_of(listen) == workload.ports.get("grpc"), listen


def test_metrics_listen_on_every_interface_at_the_metrics_port(workload):
    """--metrics-listen binds 0.0.0.0 at the metrics containerPort (Prometheus scrapes it)."""
    mlisten = workload.flag("--metrics-listen", "")
    assert mlisten.startswith("0.0.0.0:") and port_of(mlisten) == workload.ports.get("metrics"), mlisten


def test_rate_limit_for_the_default_class(workload):
    """--rate-limit sets a per-client limit for the default class: one caller cannot take a
    replica, and cardlookup_requests_rate_limited_total{client_class} is exported."""
    classes = {r.partition("=")[0]: r for r in workload.flags.get("--rate-limit", [])}
    assert "default" in classes, workload.flags.get("--rate-limit")


@pytest.fixture
def admin_listen(workload) -> str:
    admin = workload.flag("--admin-listen")
    if admin is None:
        pytest.skip("no --admin-listen: the runbooks' GetIndexInfo and Reload steps need it")
    return admin


def test_admin_listen_on_the_pods_loopback(admin_listen):
    """The admin service is on the pod's IPv4 loopback: kubectl port-forward (which connects
    to 127.0.0.1, not [::1]) reaches it, payment clients cannot."""
    assert admin_listen.startswith("127.0.0.1:"), admin_listen


def test_admin_port_is_no_container_port(admin_listen, workload):
    """Nothing exposes the admin port."""
    assert port_of(admin_listen) not in workload.ports.values(), (admin_listen, workload.ports)


def test_bin_data_is_watched(workload):
    """No --no-watch: a table changed under a volume is reloaded."""
    assert "--no-watch" not in workload.flags


@pytest.mark.parametrize("probe", PROBES)
def test_probe_is_native_grpc_on_the_grpc_port(probe, workload):
    """Native gRPC probes need an integer port: the grpc containerPort."""
    p = workload.container.get(probe, {})
    assert "grpc" in p and p["grpc"].get("port") == workload.ports.get("grpc"), p


def test_readiness_probe_checks_the_service(workload):
    """Readiness asks for cardlookup.v1.CardLookupService, which goes NOT_SERVING at SIGTERM."""
    readiness = workload.container.get("readinessProbe", {})
    assert readiness.get("grpc", {}).get("service") == "cardlookup.v1.CardLookupService", readiness


# Restricted Pod Security Standard.


def contexts(workload):
    return workload.pod.get("securityContext", {}), workload.container.get("securityContext", {})


def test_runs_as_non_root_user_65532(workload):
    psc, csc = contexts(workload)
    assert (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True and workload.run_as_user == 65532, (psc, csc)


def test_no_privilege_escalation(workload):
    _, csc = contexts(workload)
    assert csc.get("allowPrivilegeEscalation") is False, csc


def test_all_capabilities_dropped(workload):
    _, csc = contexts(workload)
    capabilities = csc.get("capabilities", {})
    assert capabilities.get("drop") == ["ALL"] and not capabilities.get("add"), capabilities


def test_seccomp_runtime_default(workload):
    psc, csc = contexts(workload)
    assert (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", (psc, csc)


def test_read_only_root_filesystem(workload):
    _, csc = contexts(workload)
    assert csc.get("readOnlyRootFilesystem") is True, csc


def test_no_host_namespaces_not_privileged(workload):
    _, csc = contexts(workload)
    pod = workload.pod
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not csc.get("privileged")


def test_resource_requests_and_limits(workload):
    res = workload.container.get("resources", {})
    assert (
        res.get("requests", {}).get("cpu")
        and res.get("requests", {}).get("memory")
        and res.get("limits", {}).get("cpu")
        and res.get("limits", {}).get("memory")
    ), res


def test_shutdown_ends_before_sigkill(workload):
    """terminationGracePeriodSeconds > the preStop sleep + --shutdown-grace: calls in flight
    finish before the kubelet's SIGKILL."""
    grace = seconds(workload.flag("--shutdown-grace", "10s"))
    pre_stop = workload.container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    tgps = workload.pod.get("terminationGracePeriodSeconds", 30)
    assert grace is not None and tgps > pre_stop + grace, (
        f"terminationGracePeriodSeconds {tgps} <= preStop {pre_stop} s + --shutdown-grace {grace} s"
    )


# The BIN data: --bin-data under a mounted ConfigMap that the render contains, under 1 MiB.


def test_bin_data_is_a_key_of_a_mounted_configmap(bin_data):
    """Each --bin-data path is a key of a ConfigMap of the render, mounted over its directory."""
    missing = [f.path for f in bin_data if not f.in_configmap]
    assert not missing, f"--bin-data not in a ConfigMap volume of the render: {missing}"


def test_bin_data_mount_is_a_directory(bin_data):
    """The BIN data mount is a directory, not a subPath: ConfigMap updates reach it."""
    mounted = [f for f in bin_data if f.mount is not None]
    assert mounted, "no --bin-data under a ConfigMap volume"
    assert all(not f.mount.get("subPath") for f in mounted), [f.mount for f in mounted]


def test_bin_data_configmap_within_1_mib(bin_data):
    """A ConfigMap holds at most 1 MiB."""
    mounted = [f for f in bin_data if f.mount is not None]
    assert mounted, "no --bin-data under a ConfigMap volume"
    for f in mounted:
        size = sum(len(x) for x in f.content.values())
        assert size <= 1024 * 1024, f"ConfigMap {f.configmap} is {size} bytes"


# Services, the ServiceMonitor, the HPA, the PDB, the NetworkPolicy, the Namespace.


def test_services_select_the_pods(example_objects, workload):
    services = of_kind(example_objects, "Service")
    assert services
    for s in services:
        assert matches(s["spec"].get("selector"), workload.pod_labels), s["metadata"]["name"]


def test_service_ports_target_container_ports(example_objects, workload):
    ports = workload.ports
    for s in of_kind(example_objects, "Service"):
        for p in s["spec"]["ports"]:
            assert p.get("targetPort") in ports or p.get("targetPort") in ports.values(), (
                f"Service {s['metadata']['name']} port {p['name']} targets {p.get('targetPort')}, no container port"
            )


def test_service_grpc_port_named_for_meshes(example_objects):
    """A Service port targeting grpc is named grpc with appProtocol grpc (or h2c), so meshes
    and load balancers speak HTTP/2 to it."""
    for s in of_kind(example_objects, "Service"):
        for p in s["spec"]["ports"]:
            if p.get("targetPort") == "grpc":
                assert p["name"] == "grpc" and p.get("appProtocol") in ("grpc", "kubernetes.io/h2c"), (
                    s["metadata"]["name"],
                    p,
                )


SERVICE_MONITOR_SPEC = {
    "selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels",
    "sampleLimit", "targetLimit", "scrapeProtocols", "fallbackScrapeProtocol", "attachMetadata",
    "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit", "bodySizeLimit",
    "keepDroppedTargets", "scrapeClass", "scrapeClassicHistograms", "nativeHistogramBucketLimit",
    "nativeHistogramMinBucketFactor", "convertClassicHistogramsToNHCB", "selectorMechanism",
    "serviceDiscoveryRole",
}  # fmt: skip


@pytest.fixture(scope="module")
def service_monitor(example_objects):
    sms = of_kind(example_objects, "ServiceMonitor")
    if len(sms) != 1:
        pytest.fail(f"one ServiceMonitor expected, found {len(sms)}")
    return sms[0]


@pytest.fixture(scope="module")
def monitored(example_objects, service_monitor):
    selector = service_monitor["spec"]["selector"].get("matchLabels", {})
    return [s for s in of_kind(example_objects, "Service") if matches(selector, s["metadata"].get("labels", {}))]


def test_one_service_monitor(example_objects):
    assert len(of_kind(example_objects, "ServiceMonitor")) == 1


def test_service_monitor_selects_one_service(monitored, scrape_job):
    """Exactly one Service: each replica is scraped once. Its name is the job the rules select."""
    assert len(monitored) == 1, [s["metadata"]["name"] for s in monitored]
    print(f'note: the rules select job="{scrape_job}": the job Prometheus gives the series')


def test_service_monitor_endpoints(service_monitor, monitored):
    """Each endpoint scrapes /metrics through a port the selected Service has."""
    for e in service_monitor["spec"].get("endpoints", []):
        for s in monitored:
            assert e.get("port") in {p["name"] for p in s["spec"]["ports"]}, (
                f"endpoint port {e.get('port')} is no port of Service {s['metadata']['name']}"
            )
        assert e.get("path", "/metrics") == "/metrics", e


def test_service_monitor_has_only_known_fields(service_monitor):
    """No field the Prometheus Operator's CRD lacks (it has no schema in kubernetes-validate)."""
    assert set(service_monitor) <= {"apiVersion", "kind", "metadata", "spec"}, set(service_monitor)
    assert set(service_monitor["spec"]) <= SERVICE_MONITOR_SPEC, set(service_monitor["spec"]) - SERVICE_MONITOR_SPEC


def test_one_horizontal_pod_autoscaler(example_objects):
    assert len(of_kind(example_objects, "HorizontalPodAutoscaler")) == 1


def test_hpa_scales_the_deployment_on_cpu_keeping_3(example_objects, workload):
    """The HPA scales this Deployment, on CPU, from 3 replicas (one zone or node lost leaves
    two serving) to a fleet's ceiling (at least 30)."""
    for h in of_kind(example_objects, "HorizontalPodAutoscaler"):
        ref = h["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] == workload.name, ref
        assert h["spec"].get("minReplicas", 1) >= 3 and h["spec"]["maxReplicas"] >= 30, h["spec"]
        assert any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"].get("metrics", [])), h["spec"]


def test_keda_example_scales_the_deployment_in_the_hpas_range(example_objects, workload):
    """The KEDA example (instead of the HPA) targets this Deployment with the HPA's range and
    behaviour, and is not in the base: two autoscalers on one Deployment would fight."""
    scaled = yaml.safe_load(KEDA_EXAMPLE.read_text())
    assert scaled["kind"] == "ScaledObject" and scaled["apiVersion"].startswith("keda.sh/"), scaled["apiVersion"]
    ref = scaled["spec"]["scaleTargetRef"]
    assert ref.get("kind", "Deployment") == "Deployment" and ref["name"] == workload.name, ref
    hpa = of_kind(example_objects, "HorizontalPodAutoscaler")[0]["spec"]
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (hpa["minReplicas"], hpa["maxReplicas"]), spec
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == hpa["behavior"]
    assert not of_kind(example_objects, "ScaledObject")


def test_one_pod_disruption_budget_selecting_the_pods(example_objects, workload):
    pdbs = of_kind(example_objects, "PodDisruptionBudget")
    for p in pdbs:
        assert matches(p["spec"]["selector"]["matchLabels"], workload.pod_labels), p["spec"]["selector"]
    assert len(pdbs) == 1


@pytest.fixture(scope="module")
def network_policy(example_objects):
    nps = of_kind(example_objects, "NetworkPolicy")
    if len(nps) != 1:
        pytest.fail(f"one NetworkPolicy expected, found {len(nps)}")
    spec = nps[0]["spec"]
    by_port = {}
    for rule in spec.get("ingress", []):
        for p in rule.get("ports", []):
            by_port.setdefault(p["port"], []).extend(rule.get("from", []))
    return spec, by_port


def test_one_network_policy_selecting_the_pods(example_objects, network_policy, workload):
    assert len(of_kind(example_objects, "NetworkPolicy")) == 1
    spec, _ = network_policy
    assert matches(spec["podSelector"]["matchLabels"], workload.pod_labels), spec["podSelector"]


def test_network_policy_opens_only_container_ports(network_policy, workload):
    _, by_port = network_policy
    ports = workload.ports
    assert set(by_port) <= set(ports) | set(ports.values()), set(by_port)


def test_network_policy_grpc_only_from_client_pods(network_policy, workload):
    """The gRPC port only from pods labelled card-lookup.example.com/client: "true"."""
    _, by_port = network_policy
    grpc_from = by_port.get("grpc", []) + by_port.get(workload.ports.get("grpc"), [])
    assert grpc_from and all(
        f.get("podSelector", {}).get("matchLabels", {}).get("card-lookup.example.com/client") == "true"
        for f in grpc_from
    ), grpc_from


def test_network_policy_metrics_only_from_prometheus(network_policy, workload):
    """The metrics port only from the Prometheus pods of one namespace."""
    _, by_port = network_policy
    metrics_from = by_port.get("metrics", []) + by_port.get(workload.ports.get("metrics"), [])
    assert metrics_from and all(
        f.get("namespaceSelector", {}).get("matchLabels") and f.get("podSelector", {}).get("matchLabels")
        for f in metrics_from
    ), metrics_from


def test_namespace_enforces_restricted(example_objects):
    """The overlay's Namespace enforces the restricted Pod Security Standard."""
    for n in of_kind(example_objects, "Namespace"):
        labels = n["metadata"].get("labels", {})
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", (n["metadata"]["name"], labels)


# --- the example overlay with tls-patch.yaml ----------------------------------------------------


def test_tls_one_deployment(tls_objects):
    assert len(of_kind(tls_objects, "Deployment")) == 1


def test_tls_flags_set(tls_workload):
    """With the TLS patch: --tls-cert, --tls-key and --tls-client-ca are set (as flags or
    their CARD_LOOKUP_TLS_* twins)."""
    settings = manifests.tls_settings(tls_workload.container)
    assert all(settings.get(f) for f in TLS_FLAGS), {f: settings.get(f) for f in TLS_FLAGS}


@pytest.mark.parametrize("flag", TLS_FLAGS)
def test_tls_file_in_a_secret_directory_mount(flag, tls_workload):
    """Each TLS file is in a Secret mounted read-only as a directory (not subPath): renewals
    reach it."""
    path = manifests.tls_settings(tls_workload.container).get(flag) or ""
    mounts = tls_workload.mounts
    mount = next((m for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
    volume = tls_workload.volumes.get(mount["name"], {}) if mount else {}
    assert mount is not None and "secret" in volume and not mount.get("subPath") and mount.get("readOnly"), (
        path,
        mount,
    )


@pytest.mark.parametrize("probe", PROBES)
def test_tls_probe_can_pass_the_handshake(probe, tls_workload):
    """With the TLS patch no probe needs what the kubelet cannot do: under mTLS a kubelet
    probe presents no client certificate; under TLS alone a plaintext gRPC probe fails the
    handshake (a gRPC probe on the port needs mode: TLS, Kubernetes 1.37, alpha gate)."""
    container = tls_workload.container
    settings = manifests.tls_settings(container)
    ports = tls_workload.ports
    pr = container.get(probe, {})
    grpc_probe = pr.get("grpc", {})
    if settings.get("--tls-client-ca"):
        usable = grpc_probe.get("port") != ports.get("grpc") and pr.get("httpGet", {}).get("port") not in (
            "grpc",
            ports.get("grpc"),
        )
    else:
        usable = grpc_probe.get("port") != ports.get("grpc") or grpc_probe.get("mode") == "TLS"
    assert usable, pr


@pytest.mark.parametrize("probe", PROBES)
def test_tls_probe_is_native_grpc_on_the_health_port(probe, tls_workload):
    """The TLS patch's probes are native gRPC probes on the plaintext health port: a
    containerPort, numbered as --health-listen binds it on every interface."""
    container = tls_workload.container
    grpc_probe = container.get(probe, {}).get("grpc", {})
    health = manifests.listen_setting(container, "--health-listen")
    assert health, "the TLS patch sets no --health-listen (CARD_LOOKUP_HEALTH_LISTEN)"
    assert health.startswith("0.0.0.0:"), f"--health-listen={health}: the kubelet probes the pod's IP"
    assert grpc_probe.get("port") == port_of(health), (probe, grpc_probe, health)
    assert tls_workload.ports.get("health") == port_of(health), tls_workload.ports
