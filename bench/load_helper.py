#!/usr/bin/env python3
"""The small jobs of bench/load.sh that are easier in Python (standard library only).

  bodies OUT_DIR               write gRPC-framed request bodies, OUT_DIR/<RPC>.bin
  check-response RPC FILE      check a gRPC response body (what nghttp printed) is the
                               service's expected answer
  save-answer FILE OUT         write the message of a gRPC response body to OUT (the bare
                               server's canned answer)
  same-answer FILE ANSWER      check a gRPC response body's message is exactly ANSWER's bytes
  check-binlist URL            check the HTTP port's binlist lookup at URL answers a Visa card
  handled METRICS_URL RPC      print "OK CANCELED OTHER": grpc_server_handled_total for RPC,
                               by code: OK, Canceled and the rest
  latency LOG_FILE [SKIP_MS]   print "COUNT NON_200 REQ/S P50 P99 P99.9" (microseconds) from an
                               h2load --log-file, leaving out the first SKIP_MS milliseconds
  table ROUNDS_FILE            print the results table (and the issues' target checks) from
                               load.sh's rounds.tsv
  pool RUN_DIR...              print the saturation figures of several load.sh runs read
                               together (see `pool` below)

A request body is what a gRPC client sends on the request stream: one message behind the 5-byte
gRPC prefix (compressed flag 0, then the length as 4 bytes big-endian). The few protobuf fields
needed (proto/cardlookup/v1/card_lookup.proto) are encoded by hand.
"""

import json
import math
import random
import re
import statistics
import struct
import sys
import urllib.request
from pathlib import Path

# The HTTP port's servers in load.sh's rounds: binlist's GET /{bin} over each HTTP version.
HTTP = {"http2": "GET /{bin} HTTP/2", "http1": "GET /{bin} HTTP/1.1"}

# A Visa test number whose BIN (411111) the embedded data holds: LookupBin answers found with an
# issuer and a country, and Validate's issuer-rules lookup hits the index.
NUMBER = "4111111111111111"
MASK_STYLE_BIN_AND_LAST_FOUR = 2
SERVICE = "cardlookup.v1.CardLookupService"


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def string_field(number, text):
    data = text.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def varint_field(number, value):
    return varint(number << 3) + varint(value)


REQUESTS = {
    # ValidateRequest { number = 1 }
    "Validate": string_field(1, NUMBER),
    # LookupBinRequest { number = 1 }
    "LookupBin": string_field(1, NUMBER),
    # MaskCardRequest { number = 1, style = 2, keep_grouping = 4 }
    "MaskCard": string_field(1, NUMBER)
    + varint_field(2, MASK_STYLE_BIN_AND_LAST_FOUR)
    + varint_field(4, 1),
}


def bodies(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for rpc, message in REQUESTS.items():
        (out / f"{rpc}.bin").write_bytes(struct.pack(">BI", 0, len(message)) + message)


def read_varint(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(message):
    """Top-level fields of a protobuf message: {number: [value, ...]} (varints and bytes)."""
    found = {}
    at = 0
    while at < len(message):
        key, at = read_varint(message, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = read_varint(message, at)
        elif wire == 2:
            length, at = read_varint(message, at)
            value, at = message[at : at + length], at + length
        elif wire == 1:
            value, at = message[at : at + 8], at + 8
        elif wire == 5:
            value, at = message[at : at + 4], at + 4
        else:
            raise ValueError(f"wire type {wire}")
        found.setdefault(number, []).append(value)
    return found


# What the service must answer for NUMBER: (field number, value, what it means).
EXPECTED = {
    "Validate": (1, 1, "valid = true"),
    "LookupBin": (1, 1, "found = true"),
    "MaskCard": (1, b"4111 11** **** 1111", 'masked = "4111 11** **** 1111"'),
}


def grpc_message(path):
    """The one message of a gRPC response body, or an error text."""
    data = Path(path).read_bytes()
    if len(data) < 5:
        return None, f"{path}: no gRPC message in the response ({len(data)} bytes)"
    compressed, length = struct.unpack(">BI", data[:5])
    message = data[5 : 5 + length]
    if compressed or len(message) != length or len(data) != 5 + length:
        return None, f"{path}: malformed gRPC message"
    return message, None


def check_response(rpc, path):
    message, problem = grpc_message(path)
    if problem:
        return problem
    number, value, meaning = EXPECTED[rpc]
    if fields(message).get(number, [None])[0] != value:
        return f"{rpc}: the answer does not have {meaning}"
    return None


def save_answer(path, out):
    message, problem = grpc_message(path)
    if problem:
        return problem
    Path(out).write_bytes(message)
    return None


def check_binlist(url):
    """The HTTP port's binlist lookup at URL answers 200 with a Visa card's document."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        document = json.load(answer)
    if document.get("scheme") != "visa":
        return f"{url}: not a Visa card's binlist document: {sorted(document)}"
    return None


def same_answer(path, answer):
    message, problem = grpc_message(path)
    if problem:
        return problem
    expected = Path(answer).read_bytes()
    if message != expected:
        return f"{path}: {len(message)} bytes, not the {len(expected)} bytes of {answer}"
    return None


HANDLED = re.compile(r"^grpc_server_handled_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def handled(url, rpc):
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    ok = canceled = other = 0
    for line in text.splitlines():
        match = HANDLED.match(line)
        if not match:
            continue
        labels = dict(LABEL.findall(match["labels"]))
        if labels.get("grpc_service") != SERVICE or labels.get("grpc_method") != rpc:
            continue
        count = int(float(match["value"]))
        code = labels.get("grpc_code")
        if code == "OK":
            ok += count
        elif code == "Canceled":
            canceled += count
        else:
            other += count
    print(ok, canceled, other)


def percentile(ordered, fraction):
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def read_log(path, skip_ms=0):
    """An h2load --log-file: (start, microseconds) of each answer, and how many were not 200.

    The calls that started in the first `skip_ms` milliseconds (the warm-up) are left out.
    h2load logs status 0 for a call whose response headers came in its own warm-up and whose
    end came in the measured period (it counts the call as a success): such a call is kept, not
    taken for a failure.
    """
    calls = []
    non_200 = 0
    with open(path) as log:
        for line in log:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            if parts[1] not in ("200", "0"):
                non_200 += 1
                continue
            calls.append((int(parts[0]), int(parts[2])))
    if calls and skip_ms:
        first = min(start for start, _ in calls)
        calls = [call for call in calls if call[0] >= first + skip_ms * 1000]
    return calls, non_200


def rate(calls):
    """Requests a second over the span of the calls' start times."""
    if len(calls) < 2:
        return 0.0
    starts = [start for start, _ in calls]
    span = (max(starts) - min(starts)) / 1e6
    return (len(calls) - 1) / span if span > 0 else 0.0


def latency(path, skip_ms="0"):
    calls, non_200 = read_log(path, int(skip_ms))
    times = sorted(micros for _, micros in calls)
    if not times:
        print(0, non_200, 0, 0, 0, 0)
        return
    print(
        len(times),
        non_200,
        f"{rate(calls):.0f}",
        percentile(times, 0.50),
        percentile(times, 0.99),
        percentile(times, 0.999),
    )


def micros(value):
    value = float(value)
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def table(path):
    """ROUNDS_FILE: tab-separated rpc, server, mode, round, requests/s, others' CPU share, log
    file, warm-up milliseconds to leave out of the log, the server's CPU microseconds a call.
    The saturation target is issue 4's 90% of the bare server, or issue 22's 85% when the
    run's `measured` file says the service ran with the audit trail."""
    measured = Path(path).parent / "measured"
    audited = measured.is_file() and re.search(r"^options:.*--audit\b", measured.read_text(), re.M)
    target, target_name = (0.85, "with the audit trail, at least 85%") if audited else (0.9, "at least 90%")
    groups = {}
    with open(path) as rounds:
        for line in rounds:
            rpc, server, mode, _, rps, others, log, skip_ms, cpu = line.rstrip("\n").split("\t")
            group = groups.setdefault(
                (rpc, server, mode), {"rps": [], "others": [], "logs": [], "cpu": []}
            )
            group["rps"].append(float(rps))
            group["others"].append(float(others))
            group["logs"].append((log, int(skip_ms)))
            group["cpu"].append(float(cpu))
    rows = []
    for (rpc, server, mode), group in groups.items():
        times = []
        for log, skip_ms in group["logs"]:
            times.extend(micros for _, micros in read_log(log, skip_ms)[0])
        times.sort()
        quantiles = [percentile(times, q) if times else 0 for q in (0.50, 0.99, 0.999)]
        rows.append((rpc, server, mode, statistics.median(group["rps"]), *quantiles,
                     statistics.median(group["cpu"]), max(group["others"])))
    bare = {(r[0], r[2]): r for r in rows if r[1] == "bare"}
    # The HTTP port's rows are measured against the service's own gRPC call (issue 20).
    grpc = {(r[0], r[2]): r for r in rows if r[1] == "service"}
    header = ("RPC", "mode", "requests/s", "p50", "p99", "p99.9", "server CPU a call",
              "vs bare server (HTTP: vs gRPC)", "others")
    lines = []
    verdicts = []
    for rpc, server, mode, rps, p50, p99, p999, cpu, others in rows:
        name = {"service": rpc, "bare": f"{rpc} (bare)"}.get(server) or f"{rpc} as {HTTP[server]}"
        ratio = ""
        base = bare.get((rpc, mode))
        if server in HTTP:
            base = grpc.get((rpc, mode))
            if mode == "saturation" and base and base[3]:
                share = rps / base[3]
                shown = percent(share)
                ratio = f"{shown} of gRPC {rpc}'s req/s"
                verdicts.append(
                    f"{HTTP[server]} saturation reaches {shown} of gRPC {rpc}'s requests/s "
                    f"(issue 20's target: at least 80%): {'met' if share >= 0.8 else 'NOT met'}"
                )
            if mode == "5000 req/s":
                verdicts.append(
                    f"{HTTP[server]} p99 at 5,000 req/s is {micros(p99)} (issue 20's target: "
                    f"under 1 ms): {'met' if p99 < 1000 else 'NOT met'}"
                )
        elif server == "service" and base:
            if mode == "saturation":
                share = rps / base[3] if base[3] else 0.0
                shown = percent(share)
                ratio = f"{shown} of its req/s"
                if base[7]:
                    ratio += f", {cpu / base[7]:.2f}x its CPU a call"
                verdicts.append(
                    f"{rpc} saturation reaches {shown} of the bare server's requests/s "
                    f"(target: {target_name}): {'met' if share >= target else 'NOT met'}"
                )
            elif base[5]:
                ratio = f"p99 {p99 / base[5]:.1f}x"
        if server == "service" and mode == "5000 req/s":
            verdicts.append(
                f"{rpc} p99 at 5,000 req/s is {micros(p99)} (target: at most 1 ms): "
                f"{'met' if p99 <= 1000 else 'NOT met'}"
            )
        lines.append(
            (name, mode, f"{rps:,.0f}", micros(p50), micros(p99), micros(p999),
             f"{cpu:.1f} µs", ratio, f"{others:.0%}")
        )
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")
    if verdicts:
        print()
        print("Targets:")
        for verdict in verdicts:
            print(f"- {verdict}")


def percent(share):
    """`share` as a percentage rounded down, so that a share shown at a target meets it (89.97%
    is 89.9%)."""
    return f"{math.floor(share * 1000) / 1000:.1%}"


def median_interval(values, resamples=2000, seed=1):
    """A 95% bootstrap interval of the median of `values`: the 2.5th and 97.5th percentiles of
    the medians of `resamples` resamples with replacement (seeded, so the same runs always give
    the same interval)."""
    draw = random.Random(seed)
    medians = sorted(
        statistics.median(draw.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(resamples * 0.025)], medians[int(resamples * 0.975) - 1]


def pool(*run_dirs):
    """RUN_DIR...: the saturation rounds of several runs of load.sh, read together. On a noisy
    machine one run's figure moves by several points from run to run; many runs read together
    give the figure with its uncertainty. Each round of the service ran right before or after
    the bare server's round of the same number, so a slow spell of the machine hits that pair
    alike: the figure is the median of the pairs' ratios (service/bare requests/s) over all the
    runs, with a 95% bootstrap interval of that median. Runs are read together only when their
    `measured` files (the binaries and options) are the same; each set is printed on its own."""
    sets = {}
    for run in map(Path, run_dirs):
        rounds = run / "rounds.tsv"
        if not rounds.is_file():
            return f"{run}: no rounds.tsv (not the output directory of a load.sh run)"
        measured = run / "measured"
        what = measured.read_text().strip() if measured.is_file() else "(not recorded)"
        service, bare = {}, {}
        for line in rounds.read_text().splitlines():
            rpc, server, mode, number, rps = line.split("\t")[:5]
            if mode == "saturation" and server in ("service", "bare"):
                (service if server == "service" else bare)[rpc, number] = float(rps)
        for rpc in sorted({rpc for rpc, _ in service}):
            paired = [round_ for round_ in service if round_[0] == rpc and bare.get(round_)]
            if not paired:
                continue
            entry = sets.setdefault(what, {}).setdefault(rpc, {"pairs": [], "runs": []})
            entry["pairs"].extend(service[round_] / bare[round_] for round_ in paired)
            entry["runs"].append(
                statistics.median(service[round_] for round_ in paired)
                / statistics.median(bare[round_] for round_ in paired)
            )
    if not sets:
        return "pool: no saturation rounds of both servers in these runs"
    for what, rpcs in sets.items():
        print(what)
        for rpc, entry in rpcs.items():
            pairs, runs = entry["pairs"], entry["runs"]
            low, high = median_interval(pairs)
            print(
                f"  {rpc} at saturation: {percent(statistics.median(pairs))} of the bare "
                f"server's requests/s (95% interval {percent(low)} to {percent(high)}); "
                f"{len(pairs)} round pairs in {len(runs)} runs, whose own figures were "
                + ", ".join(percent(run) for run in runs)
            )
    return None


def main(argv):
    commands = {
        "bodies": (bodies, 1),
        "check-response": (check_response, 2),
        "save-answer": (save_answer, 2),
        "same-answer": (same_answer, 2),
        "check-binlist": (check_binlist, 1),
        "handled": (handled, 2),
        "latency": (latency, None),
        "table": (table, 1),
        "pool": (pool, None),
    }
    if len(argv) < 2 or argv[1] not in commands or commands[argv[1]][1] not in (None, len(argv) - 2):
        print(__doc__, file=sys.stderr)
        return 2
    command, _ = commands[argv[1]]
    problem = command(*argv[2:])
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
