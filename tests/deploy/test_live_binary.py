"""The release binary, started with the Deployment's own arguments and the overlay's BIN table
(laid out as the kubelet lays out a ConfigMap volume): it answers the probes' health checks,
real calls and the admin service; hot-reloads the table on SIGHUP and when the ConfigMap is
updated in place; refuses a bad table while serving the previous one, and says where it is
wrong; flags a card tester; never logs a card number; and exits 0 on SIGTERM.

The tests share one server and run in the order of a pod's life (see conftest.py); each one
run alone brings the server to the state it checks first."""

import re
import time

import pytest

from support import (
    ADMIN_SERVICE,
    CARD_TESTER,
    NEW_ISSUER,
    SERVICE,
    has_series,
    lookup,
    run,
    scrape,
    version_of,
    wait_until,
)


def test_starts_with_the_deployments_arguments(deployment_server, live_config):
    """The Deployment's arguments (listen addresses moved to loopback) start the binary."""
    assert deployment_server.address and deployment_server.metrics_address, deployment_server.output
    assert live_config.bins is not None, "no --bin-data of the render was laid out"


def test_log_lines_are_json(deployment_server):
    """--log-format=json: the log is JSON lines, for the cluster's log collector."""
    assert any(line.startswith("{") for line in deployment_server.lines), deployment_server.output


def test_liveness_health_check(deployment_server, grpcurl):
    """The liveness probe's check, Health/Check of the overall status, is SERVING."""
    out = grpcurl(deployment_server.address, "grpc.health.v1.Health/Check")
    assert '"SERVING"' in out, out


def test_readiness_health_check(deployment_server, grpcurl):
    """The readiness probe's check, Health/Check of cardlookup.v1.CardLookupService, is SERVING."""
    out = grpcurl(deployment_server.address, "grpc.health.v1.Health/Check", data={"service": SERVICE})
    assert '"SERVING"' in out, out


def test_validate_answers(deployment_server, grpcurl):
    out = grpcurl(deployment_server.address, f"{SERVICE}/Validate", data={"number": "4111111111111111"})
    assert '"valid": true' in out, out


def test_lookup_bin_refuses_5_digits(deployment_server, grpcurl):
    out = lookup(grpcurl, deployment_server, "41111")
    assert "InvalidArgument" in out, out


def test_mask_card_answers(deployment_server, grpcurl):
    out = grpcurl(deployment_server.address, f"{SERVICE}/MaskCard", data={"number": "4111111111111111"})
    assert '"masked"' in out, out


def test_mask_card_refuses_non_cards(deployment_server, grpcurl):
    out = grpcurl(deployment_server.address, f"{SERVICE}/MaskCard", data={"number": "1234"})
    assert "InvalidArgument" in out, out


def test_lookup_bin_finds_the_overlays_issuer(deployment_server, grpcurl, overlay_table):
    """The overlay's own table is served: its first row's BIN finds its issuer."""
    if not overlay_table.first_bin:
        pytest.skip("the overlay's table has no rows")
    out = lookup(grpcurl, deployment_server, overlay_table.first_bin)
    assert f'"name": "{overlay_table.first_issuer}"' in out, out


def test_dataset_version_is_data_info_version(deployment_server, initial_dataset):
    """LookupBin's dataset_version is the version label of cardlookup_data_info ... 1, so a
    dashboard shows which table answers."""
    assert initial_dataset
    assert f'cardlookup_data_info{{version="{initial_dataset}"}} 1' in scrape(deployment_server)


def test_data_check_accepts_the_overlays_table(binary, overlay_table):
    """`card-lookup data check` (the runbooks' pre-rollout check) accepts the overlay's table."""
    if overlay_table.path is None:
        pytest.skip("no --bin-data table")
    result = run([binary, "data", "check", overlay_table.path])
    assert result.returncode == 0, result.stdout


@pytest.fixture
def admin_address(deployment_server) -> str:
    if not deployment_server.admin_address:
        pytest.skip("the Deployment has no --admin-listen")
    return deployment_server.admin_address


def test_admin_get_index_info(admin_address, grpcurl, initial_dataset, overlay_table):
    """The admin service, on its own loopback port: GetIndexInfo reports the version LookupBin
    reports, and the overlay's table among the sources."""
    info = grpcurl(admin_address, f"{ADMIN_SERVICE}/GetIndexInfo")
    assert version_of(info) == initial_dataset, info
    assert f'"name": "{overlay_table.path}"' in info, info


def test_admin_service_not_on_the_grpc_port(admin_address, deployment_server, grpcurl):
    """Payment clients cannot call Reload: the gRPC port does not list the admin service."""
    out = grpcurl(deployment_server.address, "list")
    assert ADMIN_SERVICE not in out, out


def test_sighup_reloads_unchanged_bytes(sighup_reloaded):
    """SIGHUP reloads; the bytes are unchanged, so nothing is rebuilt
    (cardlookup_data_reloads_total{result="unchanged"} counts it) within 20 s."""
    assert sighup_reloaded


def test_configmap_updated_in_place_is_hot_reloaded(reloaded, reloadable):
    """A ConfigMap updated in place (..data swapped as the kubelet does) is hot-reloaded:
    LookupBin answers the new issuer within 20 s, without a restart."""
    assert reloaded.ok, f"LookupBin {reloadable.first_bin} did not answer {NEW_ISSUER!r} within 20 s"
    print(f"reloaded within {reloaded.seconds:.1f} s")


def test_new_dataset_version_is_data_info_1_previous_0(deployment_server, reloaded, initial_dataset):
    """After the reload cardlookup_data_info is 1 for the new dataset_version and 0 for the
    previous one."""
    metrics = scrape(deployment_server)
    assert reloaded.new_dataset and reloaded.new_dataset != initial_dataset, (reloaded.new_dataset, initial_dataset)
    assert f'cardlookup_data_info{{version="{reloaded.new_dataset}"}} 1' in metrics
    assert f'cardlookup_data_info{{version="{initial_dataset}"}} 0' in metrics


def test_admin_reports_the_reload(admin_address, grpcurl, reloaded):
    """GetIndexInfo reports the new version and the reload's trigger, file_change."""
    info = grpcurl(admin_address, f"{ADMIN_SERVICE}/GetIndexInfo")
    assert version_of(info) == reloaded.new_dataset, info
    assert '"trigger": "file_change"' in info, info


def test_bad_table_is_refused(bad_table):
    """A bad table swapped in is refused: cardlookup_data_last_reload_successful 0 within 20 s
    and cardlookup_data_reloads_total{result="failure"}."""
    assert bad_table.ok


def test_previous_data_still_serves(deployment_server, grpcurl, reloadable, reloaded, bad_table):
    """After the bad table, LookupBin still answers from the previous data."""
    out = lookup(grpcurl, deployment_server, reloadable.first_bin)
    assert f'"name": "{NEW_ISSUER}"' in out, out
    assert version_of(out) == reloaded.new_dataset, out


def test_log_names_the_file_and_line(deployment_server, reloadable, bad_table):
    """The failed reload's log line names the file and the bad line."""
    where = f"{reloadable.path.name}: line {bad_table.line}:"
    assert wait_until(
        5, lambda: any('"BIN data reload failed' in line and where in line for line in deployment_server.lines)
    ), f"no log line 'BIN data reload failed' naming {where}"
    errors = re.findall(r'"error":"[^"]*"', deployment_server.output)
    print(errors[-1] if errors else "")


def test_admin_reload_names_the_line(admin_address, grpcurl, bad_table):
    """Reload through the admin service answers FailedPrecondition with the file and line."""
    out = grpcurl(admin_address, f"{ADMIN_SERVICE}/Reload")
    assert "FailedPrecondition" in out and f"line {bad_table.line}:" in out, out


def test_data_check_finds_the_bad_line_offline(binary, reloadable, bad_table):
    """`card-lookup data check` on the mounted file finds the same line offline (exit 1)."""
    result = run([binary, "data", "check", reloadable.path])
    assert result.returncode == 1 and f"line {bad_table.line}:" in result.stdout, (result.returncode, result.stdout)


def test_fixed_table_is_taken(fixed_table, reloaded):
    """The fixed table swapped in is taken: cardlookup_data_last_reload_successful 1 again
    within 20 s, and the dataset_version before the bad table."""
    assert fixed_table, f"not back to 1 with dataset_version {reloaded.new_dataset} within 20 s"


def test_card_testing_detection_flags_a_client(deployment_server, card_tester):
    """Card-testing detection, as configured (it flags and counts, and does not refuse): a
    client validating only Luhn-invalid numbers is flagged once more than the allowed ratio of
    --card-testing-min-validations of them fail in a minute: a log line naming the client, and
    cardlookup_card_testing_suspected_total{reason="luhn_failures"}."""
    assert wait_until(
        10,
        lambda: (
            has_series(deployment_server, r'^cardlookup_card_testing_suspected_total\{.*reason="luhn_failures"')
            and any(
                "client suspected of card testing" in line and CARD_TESTER in line for line in deployment_server.lines
            )
        ),
    ), f"{CARD_TESTER} not flagged after {card_tester} Luhn-invalid numbers"


def test_no_card_number_in_the_log(exercised):
    """No card number used in these calls appears in the log."""
    leaked = {pan for pan in ("4111111111111111", "4111111111111112") if pan in exercised.output}
    assert not leaked, leaked


def test_exits_0_on_sigterm(deployment_server, live_metrics):
    """SIGTERM, as the kubelet sends it, ends in exit status 0. Last: the live /metrics that
    test_live_metrics.py reads is taken first (the live_metrics fixture)."""
    start = time.monotonic()
    status = deployment_server.stop()
    assert status == 0, f"exit status {status} on SIGTERM:\n{deployment_server.output}"
    print(f"exited 0 in {time.monotonic() - start:.1f} s")
