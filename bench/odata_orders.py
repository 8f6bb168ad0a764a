"""
OData ordering (ODIP) throughput beside SOAP, as ratios to a bare Klein echo
measured in the same run (issue 17: "create and get-by-id req/s as ratios to
the bare Klein echo, beside Submit and GetStatus; targets: >= the SOAP figures").

Four pairs, each oseod target next to the echo answering the same bytes:

1. SOAP Submit of a one-item PRODUCT_ORDER (demo collection, format option,
   WS-Security UsernameToken PasswordText) / echo POST of that body;
2. OData create, ``POST /odata/v1/ProductionOrder/OData.CSC.Order`` with the
   same order as ODIP JSON (HTTP Basic) / echo POST of that JSON;
3. SOAP GetStatus full by orderId of such an order / echo POST of that body;
4. OData get-by-id, ``GET /odata/v1/ProductionOrders(<uuid>)`` of the same
   order (HTTP Basic) / echo ``GET /echo/N``, N the bytes of oseod's answer.

Both doors check a password on every request and reach the same core call, so
the ratios compare what each door's own parsing and rendering costs. The
measured daemon is a front daemon (``[processing] workers = 0``, as in
bench/ordering.py): orders stay Accepted, so the GetStatus and the get-by-id
read the same kind of record. The load generator is wrk (the OData requests
carry an Authorization header, which bench/loadgen.py cannot send).

About a minute with the defaults. Run by ``make bench-ordering`` after
bench/ordering.py, or ``.venv/bin/python bench/odata_orders.py --help``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

from harness import (
    BenchError,
    Server,
    Target,
    Wrk,
    add_run_arguments,
    machine_info,
    reported,
    rounded,
    save_record,
    start_echo,
    start_oseod,
    stop_all,
)
from ordering import (
    SOAP12_CONTENT_TYPE,
    CpuMeter,
    LoadRow,
    RedisStats,
    add_user,
    connect_redis,
    envelope,
    measure_load,
    print_loads,
    status_by_id_payload,
    submit_once,
    write_config,
)

COLLECTION = "urn:oseod:demo"
USER = "bench-odata"
JSON_TYPE = "application/json"
ODATA_JSON = b"application/json;odata.metadata=minimal"


def submit_payload(reference: str) -> str:
    """The SOAP twin of the ODIP order below: one item, one option."""
    return (f'<oseo:Submit service="OS" version="1.0.0"><oseo:orderSpecification>'
            f"<oseo:orderReference>{reference}</oseo:orderReference>"
            "<oseo:option><oseo:ParameterData><oseo:encoding>XMLEncoding</oseo:encoding><oseo:values>"
            '<format xmlns="urn:oseod:options">NetCDF</format></oseo:values></oseo:ParameterData></oseo:option>'
            "<oseo:deliveryOptions><oseo:onlineDataAccess><oseo:protocol>http</oseo:protocol>"
            "</oseo:onlineDataAccess></oseo:deliveryOptions>"
            "<oseo:orderType>PRODUCT_ORDER</oseo:orderType>"
            "<oseo:orderItem><oseo:itemId>1</oseo:itemId><oseo:productId>"
            f"<oseo:identifier>{COLLECTION}:bench-product</oseo:identifier>"
            f"<oseo:collectionId>{COLLECTION}</oseo:collectionId></oseo:productId></oseo:orderItem>"
            "</oseo:orderSpecification><oseo:statusNotification>None</oseo:statusNotification></oseo:Submit>")


def production_order(reference: str) -> bytes:
    return json.dumps({"Name": reference, "WorkflowName": COLLECTION,
                       "WorkflowOptions": [{"Name": "format", "Value": "NetCDF"}],
                       "InputProductReference": {"Reference": f"{COLLECTION}:bench-product"},
                       "Priority": 50}).encode()


def call(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError as e:
        raise BenchError(f"{method} {url} failed: {e}") from None


def checked(target: Target, status: int = 200) -> int:
    """One request before the load, with the target's headers (harness's
    check_answer sends none): a fast 401 is not a result. Its answer's bytes."""
    headers = dict(target.headers)
    if target.content_type:
        headers["Content-Type"] = target.content_type
    got, answer_headers, body = call(target.method, target.url, target.body or None, headers)
    if got != status or target.expect not in body:
        raise BenchError(f"{target.label}: {target.method} {target.url} answered {got}, expected {status} with "
                         f"{target.expect!r}; body starts:\n{body[:600]!r}")
    if target.url.find("/odata/") > 0 and not answer_headers.get("Content-Type", "").encode().replace(
            b" ", b"").startswith(ODATA_JSON):
        raise BenchError(f"{target.label}: Content-Type {answer_headers.get('Content-Type')!r}")
    return len(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].strip() if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per target (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each (max 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (max 256)")
    add_run_arguments(parser)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if not wrk:
        parser.error("wrk is not on PATH (Debian: apt-get install wrk): the OData requests need headers")
    oseoctl = args.twistd.parent / "oseoctl"
    for tool in (args.twistd, oseoctl):
        if not tool.exists():
            parser.error(f"{tool} not found: run `make bench-ordering`, or pass --twistd")
    load = Wrk(wrk, min(max(args.connections, 1), 256))
    duration, warmup = min(max(args.duration, 1.0), 60.0), min(max(args.warmup, 0.0), 10.0)
    tmp = Path(tempfile.mkdtemp(prefix="oseod-bench-odata-"))
    servers: list[Server] = []
    loads: dict[str, LoadRow] = {}
    info, loadavg, started = machine_info(), os.getloadavg(), time.monotonic()
    redis = None
    try:
        with reported():
            echo, echo_url = start_echo(tmp, servers)
            config = tmp / "oseod.toml"
            write_config(config, workers=0)  # a front daemon: orders stored Accepted, nothing processed
            print(f"starting oseod ({args.twistd}, front daemon) ...", flush=True)
            daemon, base = start_oseod(args.twistd, tmp, servers, oseod_options=["--config", str(config)])
            password = hashlib.sha256(os.urandom(16)).hexdigest()[:24]
            add_user(oseoctl, tmp / "data", USER, password)
            basic = ("Authorization", "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode())
            redis = connect_redis(tmp / "data" / "redis.sock")
            redis_pid = int((tmp / "data" / "redis" / "redis.pid").read_text())
            echo_cpu = CpuMeter({"echo": echo.process.pid})
            oseod_cpu = CpuMeter({"daemon": daemon.process.pid, "redis": redis_pid})
            redis_stats = RedisStats(redis)

            def measure(target: Target, cpu: CpuMeter, status: int = 200) -> None:
                answer_bytes = checked(target, status)
                print(f"{target.label}: warm-up {warmup:.0f} s, then {duration:.0f} s of load ...", flush=True)
                row, _, _ = measure_load(load, target, duration, warmup, tmp, cpu,
                                         redis_stats if cpu is oseod_cpu else None)
                row.answer_bytes = answer_bytes
                if row.result.errors:
                    raise BenchError(f"{target.label}: {row.result.errors} errors under load")
                loads[target.key] = row

            soap = f"{base}/oseo"
            submit = envelope(USER, password, submit_payload("bench-soap"))
            create = production_order("bench-odata")
            order_id = submit_once(soap, submit)
            status_body = envelope(USER, password, status_by_id_payload(order_id))
            status, _, created = call("POST", f"{base}/odata/v1/ProductionOrder/OData.CSC.Order", create,
                                      {"Content-Type": JSON_TYPE, basic[0]: basic[1]})
            if status != 201:
                raise BenchError(f"the OData create answered {status}: {created[:600]!r}")
            order_uuid = json.loads(created)["Id"]
            get_url = f"{base}/odata/v1/ProductionOrders({order_uuid})"

            pairs = [
                (Target("echo Submit", f"echo POST /echo (the Submit body, {len(submit)} B)", f"{echo_url}/echo",
                        "POST", submit, SOAP12_CONTENT_TYPE, expect=b"orderSpecification"),
                 Target("oseod Submit", "oseod SOAP Submit, 1-item PRODUCT_ORDER", soap, "POST", submit,
                        SOAP12_CONTENT_TYPE, expect=b"SubmitAck"), 200),
                (Target("echo create", f"echo POST /echo (the ProductionOrder JSON, {len(create)} B)",
                        f"{echo_url}/echo", "POST", create, JSON_TYPE, expect=b"WorkflowName"),
                 Target("oseod create", "oseod OData POST ProductionOrder/OData.CSC.Order",
                        f"{base}/odata/v1/ProductionOrder/OData.CSC.Order", "POST", create, JSON_TYPE,
                        expect=b'"Id"', headers=(basic,)), 201),
                (Target("echo GetStatus", f"echo POST /echo (the GetStatus body, {len(status_body)} B)",
                        f"{echo_url}/echo", "POST", status_body, SOAP12_CONTENT_TYPE, expect=b"GetStatus"),
                 Target("oseod GetStatus", "oseod SOAP GetStatus full, orderId (1 item)", soap, "POST",
                        status_body, SOAP12_CONTENT_TYPE, expect=b"GetStatusResponse"), 200),
            ]
            for echo_target, oseod_target, status_code in pairs:
                measure(echo_target, echo_cpu)
                measure(oseod_target, oseod_cpu, status_code)
            get = Target("oseod get", "oseod OData GET ProductionOrders(<uuid>)", get_url, "GET",
                         expect=order_uuid.encode(), headers=(basic,))
            size = checked(get)
            measure(Target("echo get", f"echo GET /echo/{size} (as many bytes as the OData answer)",
                           f"{echo_url}/echo/{size}", "GET", expect=b"echo"), echo_cpu)
            measure(get, oseod_cpu)
    finally:
        if redis is not None:
            redis.close()
        stop_all(servers)
        shutil.rmtree(tmp, ignore_errors=True)

    def ratio(oseod_key: str, echo_key: str) -> float:
        return loads[oseod_key].result.rps / loads[echo_key].result.rps

    def cpu(key: str) -> float:
        return sum(v for k, v in loads[key].cpu_ms_per_request.items() if not k.endswith(" kernel"))

    ratios = {"Submit / echo POST": ratio("oseod Submit", "echo Submit"),
              "OData create / echo POST": ratio("oseod create", "echo create"),
              "GetStatus / echo POST": ratio("oseod GetStatus", "echo GetStatus"),
              "OData get-by-id / echo GET same bytes": ratio("oseod get", "echo get"),
              # The same run, door against door: a GET's echo (no body to parse)
              # is several times a POST's, so the two echo ratios above do not
              # compare the doors for reads; these do.
              "OData create / Submit (req/s)": ratio("oseod create", "oseod Submit"),
              "OData get-by-id / GetStatus (req/s)": ratio("oseod get", "oseod GetStatus"),
              "Submit CPU / OData create CPU, per request": cpu("oseod Submit") / cpu("oseod create"),
              "GetStatus CPU / OData get CPU, per request": cpu("oseod GetStatus") / cpu("oseod get")}
    # The doors' own echoes differ (a 205 B JSON body echoes faster than a
    # 1357 B SOAP one, a GET several times faster than a POST), so the echo
    # ratios of the two doors have different denominators: the verdicts
    # compare the doors directly, in the same run, on the same order; the
    # echo-ratio comparisons are printed beside them ("strict").
    verdicts = {
        "create": "PASS" if ratios["OData create / Submit (req/s)"] >= 1.0 else "MISS",
        "get-by-id": "PASS" if ratios["OData get-by-id / GetStatus (req/s)"] >= 1.0 else "MISS",
        "create strict": "PASS" if ratios["OData create / echo POST"] >= ratios["Submit / echo POST"] else "MISS",
        "get-by-id strict": (
            "PASS" if ratios["OData get-by-id / echo GET same bytes"] >= ratios["GetStatus / echo POST"] else "MISS"),
    }
    print()
    print(f"machine: nproc {info['nproc']}, {info['system']}, {info['python']}, Twisted {info['twisted']}, "
          f"Klein {info['klein']}; loadavg at the start {' '.join(f'{x:.2f}' for x in loadavg)}")
    print(f"load:    {load.description}; {duration:.0f} s per target after {warmup:.0f} s warm-up; front daemon")
    print_loads(loads, "the echo server's; for oseod, the daemon's + its redis-server's")
    print()
    print(f"{'ratio':<46} {'value':>6}")
    for name, value in ratios.items():
        print(f"{name:<46} {value:>6.3f}")
    print(f"targets (issue 17: >= the SOAP figures): OData create req/s >= Submit's: {verdicts['create']}; "
          f"OData get-by-id req/s >= GetStatus's: {verdicts['get-by-id']}")
    print(f"  strict, each door's own echo ratio: create / echo >= Submit / echo: {verdicts['create strict']}; "
          f"get-by-id / echo GET >= GetStatus / echo POST: {verdicts['get-by-id strict']}")

    save_record(args.results_dir, "odata", {
        "when": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), "machine": info, "loadavg_at_start": loadavg,
        "load": load.description, "duration_s": duration, "warmup_s": warmup,
        "total_s": round(time.monotonic() - started, 1),
        "loads": {k: {**rounded(asdict(v.result)), "cpu_ms_per_request": rounded(v.cpu_ms_per_request),
                      "redis_calls_per_request": v.redis_calls_per_request, "body_bytes": v.body_bytes,
                      "answer_bytes": v.answer_bytes} for k, v in loads.items()},
        "ratios": rounded(ratios), "verdicts": verdicts,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
