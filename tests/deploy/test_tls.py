"""The TLS example, live: the release binary with tls-patch.yaml's flags and Secret (laid out
as the kubelet mounts it), certificates from a throwaway CA made with openssl. mTLS calls pass;
plaintext and certificate-less ones, all a kubelet probe could make, do not; the patch's probes
answer; a renewed certificate swapped into the Secret is served without a restart; SIGTERM
ends in exit status 0."""

import subprocess
import time

import pytest

import card_lookup_process
import kubelet
import manifests
from manifests import PROBES
from promql_labels import TLS_ONLY, Analysis, parse_exposition
from support import ROOT, RULES, SERVICE, Grpcurl, lookup, run, scrape, wait_until

SERVER_EXT = "subjectAltName=DNS:card-lookup.payments.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth"


@pytest.fixture(scope="module")
def pki(openssl, tmp_path_factory):
    """A throwaway CA (P-256), and from it a server certificate, its renewal, and a client
    certificate."""
    d = tmp_path_factory.mktemp("pki")

    def openssl_ok(*args):
        result = run([openssl, *args], cwd=d)
        if result.returncode != 0:
            pytest.fail(f"openssl could not make the throwaway certificates:\n{result.stdout}")

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl_ok(
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=check-deploy CA"
    )

    def cert(name, subject, extensions):
        openssl_ok("req", *curve, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        (d / f"{name}.ext").write_text(extensions + "\n")
        openssl_ok(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
        )  # fmt: skip

    cert("server", "/CN=card-lookup", SERVER_EXT)
    cert("renewed", "/CN=card-lookup renewed", SERVER_EXT)
    cert("client", "/CN=check-deploy-client", "extendedKeyUsage=clientAuth")
    return d


@pytest.fixture(scope="module")
def tls_config(tls_workload, tls_objects, pki, tmp_path_factory) -> manifests.LiveConfig:
    """The TLS Deployment's arguments for this machine; the Secret as the kubelet mounts it
    (tls.crt, tls.key, ca.crt behind ..data)."""
    files = manifests.bin_data(tls_workload, tls_objects)
    config = manifests.live_config(tls_workload, files, tmp_path_factory.mktemp("tls"))
    for directory in config.secret_dirs.values():
        kubelet.lay_out(
            directory,
            {
                "tls.crt": (pki / "server.crt").read_bytes(),
                "tls.key": (pki / "server.key").read_bytes(),
                "ca.crt": (pki / "ca.crt").read_bytes(),
            },
        )
    return config


@pytest.fixture(scope="module")
def tls_server(binary, tls_config):
    server = card_lookup_process.start_server(tls_config.args, env=tls_config.env, binary=binary)
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def mtls(grpcurl_path, pki) -> Grpcurl:
    """grpcurl with the throwaway CA and the client certificate."""
    return Grpcurl(
        grpcurl_path,
        ["-cacert", str(pki / "ca.crt"), "-cert", str(pki / "client.crt"), "-key", str(pki / "client.key")],
    )


def test_starts_with_the_tls_patchs_secret_and_flags(tls_server, tls_config):
    assert tls_server.address, tls_server.output
    assert tls_config.secret_dirs, "the TLS patch mounts no Secret"


def test_mtls_health_check(tls_server, mtls):
    """Health/Check is SERVING for a client certificate signed by ca.crt."""
    out = mtls(tls_server.address, "grpc.health.v1.Health/Check", data={"service": SERVICE})
    assert '"SERVING"' in out, out


def test_mtls_lookup_bin(tls_server, mtls):
    out = lookup(mtls, tls_server, "622848")
    assert '"found": true' in out, out


def test_plaintext_health_check_fails(tls_server, mtls):
    """A plaintext Health/Check fails: a kubelet gRPC probe (plaintext) cannot use this port."""
    out = mtls(tls_server.address, "grpc.health.v1.Health/Check", tls=["-plaintext", "-max-time", "5"])
    assert '"SERVING"' not in out, out


def test_no_client_certificate_fails(tls_server, mtls, pki):
    """TLS without a client certificate fails: nor can a kubelet probe with mode: TLS."""
    out = mtls(
        tls_server.address, "grpc.health.v1.Health/Check", tls=["-cacert", str(pki / "ca.crt"), "-max-time", "5"]
    )
    assert '"SERVING"' not in out, out


# The health API as the kubelet's probe has it built in: the health port serves no reflection.
HEALTH_PROTO = """syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
"""


@pytest.fixture(scope="module")
def health_port(tls_server) -> str:
    """The TLS server's plaintext health port (its loopback twin of the patch's)."""
    assert wait_until(10, lambda: tls_server.health_address), "no health port:\n" + tls_server.output
    return tls_server.health_address


@pytest.mark.parametrize("probe", PROBES)
def test_patch_probe_answers(probe, health_port, tls_workload, grpcurl_path, tmp_path):
    """The patch's probe, as the kubelet makes it: gRPC in plaintext, no certificate, on the
    health port, answers SERVING."""
    grpc_probe = tls_workload.container.get(probe, {}).get("grpc")
    assert grpc_probe, f"the patch's {probe} is no gRPC probe"
    (tmp_path / "health.proto").write_text(HEALTH_PROTO)
    proto = ["-plaintext", "-import-path", str(tmp_path), "-proto", "health.proto"]
    data = {"service": grpc_probe["service"]} if grpc_probe.get("service") else {}
    out = Grpcurl(grpcurl_path)(health_port, "grpc.health.v1.Health/Check", data=data, tls=proto)
    assert '"SERVING"' in out, out


def test_health_port_serves_nothing_else(health_port, grpcurl_path):
    """The health port answers no other service: a card lookup there is Unimplemented."""
    proto = ["-plaintext", "-import-path", str(ROOT / "proto"), "-proto", "cardlookup/v1/card_lookup.proto"]
    out = Grpcurl(grpcurl_path)(health_port, f"{SERVICE}/LookupBin", data={"number": "622848"}, tls=proto)
    assert "Unimplemented" in out, out


def served_subject(openssl, pki, address) -> str:
    """The subject of the certificate the server presents to a client with a certificate."""
    try:
        hello = subprocess.run(
            [openssl, "s_client", "-connect", address, "-CAfile", pki / "ca.crt", "-cert", pki / "client.crt",
             "-key", pki / "client.key", "-alpn", "h2"],
            input=b"", capture_output=True, timeout=10,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return ""
    subject = subprocess.run([openssl, "x509", "-noout", "-subject"], input=hello.stdout, capture_output=True)
    return subject.stdout.decode()


def test_renewed_certificate_is_served_without_restart(tls_server, tls_config, mtls, openssl, pki):
    """A renewal: cert-manager rewrites the Secret (certificate and key together) and the
    kubelet swaps the new files in. Within 20 s the server presents the renewed certificate,
    and mTLS calls still pass, without a restart."""
    for directory in tls_config.secret_dirs.values():
        kubelet.update(
            directory,
            {"tls.crt": (pki / "renewed.crt").read_bytes(), "tls.key": (pki / "renewed.key").read_bytes()},
        )
    renewed = wait_until(20, lambda: "card-lookup renewed" in served_subject(openssl, pki, tls_server.address))
    assert renewed, f"still served: {served_subject(openssl, pki, tls_server.address)}\n" + "\n".join(
        line for line in tls_server.lines if "tls" in line.lower()
    )
    out = mtls(tls_server.address, "grpc.health.v1.Health/Check")
    assert '"SERVING"' in out, out


def test_tls_metrics_the_rules_use_are_on_live_metrics(tls_server, promql_parser):
    """The TLS-only metrics the rules use (handshake failures, the certificate's expiry) are
    on the TLS server's /metrics, with the labels the rules use."""
    analysis = Analysis(promql_parser, parse_exposition(scrape(tls_server)), "card-lookup")
    analysis.rules(RULES)
    tls_metrics = sorted(m for m in analysis.used if m.startswith(TLS_ONLY))
    assert tls_metrics, "the rules use no TLS metric"
    missing = [m for m in tls_metrics if m not in analysis.scraped]
    assert not missing, "not on the TLS server's /metrics: " + ", ".join(missing)
    # Only the rules over TLS metrics: the others are checked against the live server of
    # test_live_metrics.py, which has every other metric (a synced table, calls made).
    tls_rules = {where for m in tls_metrics for where in analysis.used[m]}
    bad = [
        f"{where}: " + "; ".join(problems)
        for where, problems in analysis.rule_results
        if problems and where in tls_rules
    ]
    assert not bad, "\n".join(bad)


def test_tls_exits_0_on_sigterm(tls_server):
    """SIGTERM ends the TLS server with exit status 0."""
    start = time.monotonic()
    status = tls_server.stop()
    assert status == 0, f"exit status {status} on SIGTERM:\n{tls_server.output}"
    print(f"exited 0 in {time.monotonic() - start:.1f} s")
