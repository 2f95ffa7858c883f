"""deploy/docker: hadolint, and the Dockerfile against the Deployment that runs its image.

The image is not built here: this machine has no Docker engine (docker build needs one)."""

import json
import re
import subprocess

import pytest

from support import DOCKERFILE, ROOT, run


@pytest.fixture(scope="module")
def lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.fixture(scope="module")
def froms(lines) -> list[str]:
    return [line.split()[1] for line in lines if line.upper().startswith("FROM ")]


def test_hadolint(hadolint):
    """hadolint finds nothing at warning level or above in the Dockerfile."""
    result = run([hadolint, "--failure-threshold", "warning", DOCKERFILE])
    assert result.returncode == 0, result.stdout


def test_builds_in_an_official_rust_image_on_debian_12(froms):
    """Two stages; the build stage is the official Rust image on Debian 12 (bookworm), whose
    glibc the runtime image matches."""
    assert len(froms) == 2, froms
    assert re.fullmatch(r"rust:\d+\.\d+(\.\d+)?-(slim-)?bookworm", froms[0]), froms[0]


def test_runs_on_distroless_nonroot(froms):
    """The runtime image is distroless cc on Debian 12, as its nonroot user."""
    assert froms[-1:] == ["gcr.io/distroless/cc-debian12:nonroot"], froms


def test_rust_version_meets_cargo_toml(froms):
    """The Dockerfile's Rust is at least Cargo.toml's rust-version: the image can build."""
    mrv = re.search(r'^rust-version\s*=\s*"(\d+)\.(\d+)', (ROOT / "Cargo.toml").read_text(), re.M)
    m = re.match(r"rust:(\d+)\.(\d+)", froms[0]) if froms else None
    if not (mrv and m):
        pytest.skip(f"no rust-version in Cargo.toml ({mrv}) or no rust:X.Y image ({froms})")
    assert (int(m[1]), int(m[2])) >= (int(mrv[1]), int(mrv[2])), (
        f"Dockerfile's Rust {m[1]}.{m[2]} is older than Cargo.toml's rust-version {mrv[1]}.{mrv[2]}"
    )
    try:
        local = re.search(
            r"rustc (\d+)\.(\d+)", subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout
        )
    except OSError:
        local = None
    if local and (local[1], local[2]) != (m[1], m[2]):
        print(f"note: the Dockerfile builds with Rust {m[1]}.{m[2]}, this machine's rustc is {local[1]}.{local[2]}")


def test_builds_with_cargo_build_release_locked(lines):
    """The image's binary is built from Cargo.lock, as CI builds it."""
    assert any(re.search(r"cargo build --release --locked", line) for line in lines)


def test_entrypoint_is_the_vector_form(lines):
    """ENTRYPOINT ["/usr/local/bin/card-lookup"]: no shell (the image has none), and the
    Deployment's args are the binary's flags."""
    ep = [line for line in lines if line.upper().startswith("ENTRYPOINT ")]
    try:
        ep_vec = json.loads(ep[-1].split(None, 1)[1]) if ep else None
    except ValueError:
        ep_vec = None
    assert ep_vec == ["/usr/local/bin/card-lookup"], ep


def test_the_deployment_keeps_the_entrypoint(workload):
    """The Deployment gives args only, no command: the image's ENTRYPOINT runs."""
    assert not workload.container.get("command"), workload.container.get("command")


def test_user_is_the_pods_run_as_user(lines, workload):
    """The image's USER is the runAsUser of the pod (65532, distroless' nonroot)."""
    user = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert user and user[-1].split(":")[0] == str(workload.run_as_user), (user, workload.run_as_user)


def test_expose_is_the_container_ports(lines, workload):
    """EXPOSE names exactly the Deployment's container ports."""
    exposed = {int(p.split("/")[0]) for line in lines if line.upper().startswith("EXPOSE ") for p in line.split()[1:]}
    assert exposed == set(workload.ports.values()), (sorted(exposed), workload.ports)


def test_image_listens_on_the_container_ports_without_flags(lines, workload):
    """CARD_LOOKUP_LISTEN and CARD_LOOKUP_METRICS_LISTEN put the image on 0.0.0.0 at the
    Deployment's ports even when it is run without flags."""
    env = dict(
        re.findall(r"(CARD_LOOKUP_[A-Z_]+)=(\S+)", " ".join(line for line in lines if line.upper().startswith("ENV ")))
    )
    ports = workload.ports
    assert env.get("CARD_LOOKUP_LISTEN") == f"0.0.0.0:{ports.get('grpc')}", env
    assert env.get("CARD_LOOKUP_METRICS_LISTEN") == f"0.0.0.0:{ports.get('metrics')}", env


def test_dockerignore_leaves_out_build_output():
    """.dockerignore keeps target/, .tools/ and .git/ out of the build context."""
    with open(ROOT / ".dockerignore") as f:
        ignored = {line.strip().rstrip("/") for line in f if line.strip() and not line.startswith("#")}
    assert {"target", ".tools", ".git"} <= ignored, ignored
