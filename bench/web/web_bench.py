"""The web portal in Chromium: time to a usable dashboard, activations log and audit & event log, cold and
warm, on `portal dev`'s demo data and on the demo organization grown to 100,000 activations and 1,000,000
audit events; with each data set's figures checked through the API, and the API calls behind those pages
timed over gRPC and Connect JSON. See bench/README.md ("Web portal benchmark").

    web_bench.py --portal BIN    (environment: see bench/web/run)
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grow import grow  # noqa: E402
from portal_dev import (ADMIN_EMAIL, PASSWORD, ROOT, SESSION_COOKIE, ConnectSession,  # noqa: E402
                        PortalDev, grpc_session, log, stubs)

SITE = ROOT / "Sources" / "PortalWeb" / "Site"
PAGES = [("dashboard", "/"), ("activations", "/activations"), ("audit", "/audit")]
READY = 'main#main[data-state="ready"], main#main[data-state="error"]'

# Runs before any of the page's scripts in every document: notes each data-state <main id="main"> takes,
# with performance.now() (milliseconds since the navigation started) when it took it.
READY_PROBE = """
(() => {
  const note = () => {
    const main = document.getElementById("main");
    const state = main ? main.getAttribute("data-state") : null;
    if (state === window.__benchLast) return;
    window.__benchLast = state;
    (window.__benchStates = window.__benchStates || []).push([state, performance.now()]);
    if (state === "ready" && window.__benchReady === undefined) window.__benchReady = performance.now();
  };
  new MutationObserver(note).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
})();
"""

# Navigation Timing and Resource Timing of the current document.
COLLECT = """
() => {
  const nav = performance.getEntriesByType("navigation")[0] || {};
  const resources = performance.getEntriesByType("resource");
  const api = resources.filter((r) => r.name.includes("/portal.gateway.v1.PortalService/"));
  const sum = (list, key) => list.reduce((total, r) => total + (r[key] || 0), 0);
  return {
    ready: window.__benchReady === undefined ? null : window.__benchReady,
    states: window.__benchStates || [],
    responseEnd: nav.responseEnd, domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
    transfer: (nav.transferSize || 0) + sum(resources, "transferSize"),
    apiTransfer: sum(api, "transferSize"),
    requests: 1 + resources.length, apiRequests: api.length,
    apiEnd: api.length ? Math.max(...api.map((r) => r.responseEnd)) : null,
    calls: api.map((r) => [new URL(r.name).pathname.split("/").pop(), Math.round(r.startTime), Math.round(r.duration), r.transferSize]),
    files: resources.filter((r) => !api.includes(r)).map((r) => [new URL(r.name).pathname, r.transferSize, r.encodedBodySize]),
  };
}
"""


# ---------------------------------------------------------------------------------------------- figures

def p50(values):
    return statistics.median(values) if values else None


def p90(values):
    """Nearest rank: with 5 samples, the largest."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def ms(value, digits=0):
    return "-" if value is None else f"{value:.{digits}f}"


def site_size() -> str:
    files = sorted(p for p in SITE.rglob("*") if p.is_file() and not p.name.startswith("."))
    raw = sum(p.stat().st_size for p in files)
    zipped = sum(len(gzip.compress(p.read_bytes(), compresslevel=9, mtime=0)) for p in files)
    biggest = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:3]
    return (f"{len(files)} files, {raw:,} B, gzip -9 per file {zipped:,} B (the web listener sends them uncompressed); largest: "
            + ", ".join(f"{p.relative_to(SITE)} {p.stat().st_size:,} B" for p in biggest))


# ---------------------------------------------------------------------------------------------- background load

HZ = os.sysconf("SC_CLK_TCK")


_OURS: set[int] = set()       # this process's descendants seen so far
_SESSIONS: set[int] = set()   # sessions they lead (Playwright starts Chromium in a session of its own)


def _processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent, session, CPU ticks so far) of every process but kernel threads."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) != 0:
            stats[int(stat.parent.name)] = (int(fields[1]), int(fields[3]), sum(int(x) for x in fields[11:15]))
    return stats


def remember_ours(stats: dict | None = None) -> None:
    """Notes this process's descendants (portal dev, Playwright's driver, Chromium): when Chromium's main
    process ends first, its other processes are orphaned and no longer look like ours but keep its session."""
    stats = stats if stats is not None else _processes()
    _OURS.add(os.getpid())
    grew = True
    while grew:
        grew = False
        for pid, (parent, _, _) in stats.items():
            if parent in _OURS and pid not in _OURS:
                _OURS.add(pid)
                grew = True
    _SESSIONS.update(sid for pid, (_, sid, _) in stats.items() if pid == sid and pid in _OURS)


def foreign_ticks() -> dict[int, int]:
    """CPU ticks used so far by each process that is neither this one nor started by it."""
    stats = _processes()
    remember_ours(stats)
    return {pid: ticks for pid, (_, sid, ticks) in stats.items() if pid not in _OURS and sid not in _SESSIONS}


def foreign_seconds(before: dict[int, int]) -> float:
    """CPU seconds other processes used since `before` (at least: a process that ended meanwhile is not counted)."""
    return sum(t - before.get(pid, 0) for pid, t in foreign_ticks().items()) / HZ


def foreign_top(before: dict[int, int]) -> str:
    """The other processes that used most CPU since `before`, by name."""
    used = {}
    for pid, ticks in foreign_ticks().items():
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        used[name] = used.get(name, 0) + (ticks - before.get(pid, 0)) / HZ
    top = sorted(((v, k) for k, v in used.items() if v >= 0.5), reverse=True)[:3]
    return ", ".join(f"{name} {seconds:.0f} s" for seconds, name in top)


def quiet_wait(limit: float) -> str:
    """Waits (up to `limit` s) until other processes use under a quarter of a core over 5 s."""
    started = time.monotonic()
    while True:
        before = foreign_ticks()
        time.sleep(5)
        if foreign_seconds(before) <= 5 / 4 or time.monotonic() - started >= limit:
            break
    waited = time.monotonic() - started
    busy = waited >= limit
    return f"waited {waited:.0f} s for other processes to go idle" + (" (they did not)" if busy else "") if waited > 6 else ""


# ---------------------------------------------------------------------------------------------- the API

def api_calls(page_size: int, grown: bool) -> list[tuple[str, str, dict]]:
    """(label, method, Connect JSON request) of the calls the three pages make (as the portal's scripts
    build them: /, /activations and /audit without filters), then the same lists filtered and sorted."""
    calls = [
        ("GetDashboard", "GetDashboard", {}),
        ("ListActivations, first page", "ListActivations", {"pageSize": page_size, "orderBy": "activation_date desc"}),
        ("ListActivations, next page", "ListActivations", {"pageSize": page_size, "orderBy": "activation_date desc", "pageToken": "next"}),
        ("ListProducts (activations filter)", "ListProducts", {"pageSize": 500, "orderBy": "product_name asc"}),
        ("ListAuditEvents, first page", "ListAuditEvents", {"pageSize": page_size, "orderBy": "time desc"}),
        ("ListAuditEvents, next page", "ListAuditEvents", {"pageSize": page_size, "orderBy": "time desc", "pageToken": "next"}),
        ("activations: one product", "ListActivations", {"pageSize": page_size, "productIds": ["QSC-ATLAS"]}),
        ("activations: by project name", "ListActivations", {"pageSize": page_size, "orderBy": "project_name asc"}),
        ("activations: search \"harbor\"", "ListActivations", {"pageSize": page_size, "searchText": "harbor"}),
        ("audit: type ACTIVATIONS", "ListAuditEvents", {"pageSize": page_size, "eventTypes": ["EVENT_TYPE_ACTIVATIONS"]}),
        ("audit: user Katherine Johnson", "ListAuditEvents", {"pageSize": page_size, "user": "katherine johnson"}),
        ("audit: search \"revoked\"", "ListAuditEvents", {"pageSize": page_size, "searchText": "revoked"}),
        ("audit: oldest first", "ListAuditEvents", {"pageSize": page_size, "orderBy": "time asc"}),
    ]
    return calls if grown else calls[:6]


def api_checks(dev: PortalDev, organization: str, samples: int, page_size: int, grown: bool) -> dict:
    """The data set's figures as Ada (Admin, Northwind) sees them, and the pages' calls timed through the
    gateway: over gRPC, and over Connect JSON as the browser sends them (GET, session cookie)."""
    from google.protobuf import json_format
    P, _, _, _ = stubs()
    gateway, auth = grpc_session(dev, organization)
    result = {"first": {}, "grpc": {}, "connect": {}, "bytes": {}}

    def timed(call):
        started = time.perf_counter()
        answer = call()
        return (time.perf_counter() - started) * 1000, answer

    def by_grpc(method, request):
        message = json_format.ParseDict(request, getattr(P, method + "Request")())
        return getattr(gateway, method)(message, metadata=auth, timeout=120)

    # The first calls after start, before anything warmed the databases' caches.
    calls = api_calls(page_size, grown)
    firsts = {}
    for label, method, request in calls:
        if "pageToken" not in request and method in ("GetDashboard", "ListActivations", "ListAuditEvents") and method not in firsts:
            firsts[method] = label
            result["first"][label], _ = timed(lambda: by_grpc(method, request))
    connect = ConnectSession(dev)
    try:
        who = connect.call("WhoAmI")["principal"]
        dashboard, acts, events = by_grpc("GetDashboard", {}), by_grpc("ListActivations", calls[1][2]), by_grpc("ListAuditEvents", calls[4][2])
        c_dashboard = connect.get("GetDashboard", {})
        c_acts, c_events = connect.get("ListActivations", calls[1][2]), connect.get("ListAuditEvents", calls[4][2])
        result["checks"] = {
            "organization": who.get("organizationId"), "role": who.get("role"),
            "available": dashboard.available_licenses, "activated": dashboard.activated_licenses,
            "activations": acts.total_size, "events": events.total_size,
            "connect_activations": int(c_acts.get("totalSize", 0)), "connect_events": int(c_events.get("totalSize", 0)),
            "connect_activated": int(c_dashboard.get("activatedLicenses", 0)),
        }
        tokens = {"ListActivations": (acts.next_page_token, c_acts.get("nextPageToken", "")),
                  "ListAuditEvents": (events.next_page_token, c_events.get("nextPageToken", ""))}
        for label, method, request in calls:
            grpc_request, json_request = request, request
            if request.get("pageToken") == "next":
                grpc_token, json_token = tokens[method]
                if not grpc_token:
                    continue   # one page holds them all
                grpc_request, json_request = {**request, "pageToken": grpc_token}, {**request, "pageToken": json_token}
            for kind, call in (("grpc", lambda: by_grpc(method, grpc_request)), ("connect", lambda: connect.get(method, json_request))):
                for _ in range(3):
                    call()
                result[kind][label] = [timed(call)[0] for _ in range(samples)]
            result["bytes"][label] = (by_grpc(method, grpc_request).ByteSize(), len(json.dumps(connect.get(method, json_request), separators=(",", ":"))))
    finally:
        connect.close()
    return result


def expect(checks: dict, organization: str, activations: int | None, events: int | None) -> list[str]:
    problems = []
    if checks["organization"] != organization or checks["role"] != "ROLE_ADMIN":
        problems.append(f"Connect session is {checks['role']} of {checks['organization']}, not Admin of {organization}")
    if checks["activations"] != checks["connect_activations"] or checks["events"] != checks["connect_events"]:
        problems.append("gRPC and Connect JSON report different total sizes")
    if checks["activated"] != checks["connect_activated"]:
        problems.append("gRPC and Connect JSON report different dashboards")
    if activations is not None and not 0.99 * activations <= checks["activations"] <= 1.01 * activations:
        problems.append(f"ListActivations total_size {checks['activations']:,}, expected ~{activations:,}")
    if events is not None and not 0.99 * events <= checks["events"] <= 1.01 * events:
        problems.append(f"ListAuditEvents total_size {checks['events']:,}, expected ~{events:,}")
    if checks["activated"] > checks["available"]:
        problems.append("more licenses activated than available")
    return problems


# ---------------------------------------------------------------------------------------------- the browser

def sign_in(context, origin: str, timeout_ms: int) -> float:
    """Ada signs in through /sign-in and chooses Northwind; returns the milliseconds until the session cookie is set."""
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    started = time.perf_counter()
    try:
        page.goto(origin + "/sign-in")
        page.get_by_label("Email").fill(ADMIN_EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("radio", name=re.compile("Northwind")).check()
        page.get_by_role("button", name="Continue").click()
        deadline = time.monotonic() + timeout_ms / 1000
        while not any(c["name"] == SESSION_COOKIE for c in context.cookies(origin)):
            if time.monotonic() > deadline:
                raise RuntimeError("no session cookie after choosing Northwind at /sign-in")
            time.sleep(0.02)
    except Exception as error:
        first = str(error).strip().splitlines()[0]
        raise RuntimeError(first + (f" (the page's script failed: {errors[0]})" if errors else "")) from error
    elapsed = (time.perf_counter() - started) * 1000
    page.close()
    return elapsed


def navigate(page, url: str, reload: bool, timeout_ms: int) -> dict:
    """One navigation until <main id="main"> says ready (or error), with the page's timing figures."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    started = time.perf_counter()
    if reload:
        page.reload(wait_until="commit")
    else:
        page.goto(url, wait_until="commit")
    sample = {"wall": None}
    try:
        page.wait_for_selector(READY, state="attached", timeout=timeout_ms)
        sample["wall"] = (time.perf_counter() - started) * 1000
    except PlaywrightTimeout:
        pass
    try:
        page.wait_for_load_state("load", timeout=timeout_ms)
    except PlaywrightTimeout:
        pass
    sample.update(page.evaluate(COLLECT))
    sample["state"] = page.evaluate("(() => { const m = document.getElementById('main'); return m ? m.getAttribute('data-state') : 'no <main id=main>'; })()")
    sample["path"] = re.sub(r"^https?://[^/]+", "", page.url)
    if sample["state"] != "ready":
        sample["wall"] = None
    return sample


def browse(dev: PortalDev, samples: int, timeout_ms: int, chromium: str) -> dict:
    """For each page, `samples` fresh contexts: sign in, clear the HTTP cache, open the page (cold), reload it (warm)."""
    from playwright.sync_api import sync_playwright
    results = {"sign_in": [], "pages": {}, "console": {}}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        results["chromium"] = browser.version
        remember_ours()
        try:
            for name, path in PAGES:
                cold, warm, notes = [], [], []
                for i in range(samples):
                    context = browser.new_context()
                    context.add_init_script(READY_PROBE)
                    try:
                        results["sign_in"].append(sign_in(context, dev.origin, timeout_ms))
                    except Exception as error:  # noqa: BLE001 - reported, and nothing else can be measured
                        results["sign_in_error"] = str(error).strip().splitlines()[0][:300]
                        log(f"  signing in at /sign-in failed: {error}")
                        context.close()
                        return results
                    page = context.new_page()
                    errors = []
                    page.on("console", lambda message, errors=errors: errors.append(message.text) if message.type == "error" else None)
                    page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
                    # A fresh context holds nothing but what signing in fetched: drop that too.
                    page.context.new_cdp_session(page).send("Network.clearBrowserCache")
                    remember_ours()
                    first = navigate(page, dev.origin + path, False, timeout_ms)
                    cold.append(first)
                    ok = first["state"] == "ready" and first["path"] == path
                    if ok:
                        warm.append(navigate(page, dev.origin + path, True, timeout_ms))
                    for message in errors:
                        results["console"][message[:200]] = results["console"].get(message[:200], 0) + 1
                    context.close()
                    log(f"  {name} #{i + 1}: cold {describe(first)}" + (f"; warm {describe(warm[-1])}" if ok else ""))
                    if not ok:
                        notes.append(not_ready(first, path, timeout_ms))
                        break   # the page does not honour the readiness contract: its other samples would wait as long
                results["pages"][name] = {"cold": cold, "warm": warm, "notes": notes}
        finally:
            browser.close()
    return results


def describe(sample: dict) -> str:
    calls = ", ".join(f"{c[0]} {c[2]} ms" for c in sample.get("calls", []))
    return (f"state {sample['state']} ready {ms(sample['ready'])} ms wall {ms(sample['wall'])} ms responseEnd {ms(sample['responseEnd'])} "
            f"DCL {ms(sample['domContentLoaded'])} {sample['transfer']:,} B in {sample['requests']} requests" + (f" [{calls}]" if calls else ""))


def not_ready(sample: dict, path: str, timeout_ms: int) -> str:
    if sample["state"] == "error":
        return "the page said data-state=\"error\""
    if sample["path"] != path:
        return f"the page went to {sample['path']} instead of {path}"
    seen = " -> ".join(str(s[0]) for s in sample["states"] if s[0] is not None)
    return (f"not ready within {timeout_ms / 1000:.0f} s: <main id=main> data-state " + (seen if seen else "never set")
            + "; remaining samples skipped")


# ---------------------------------------------------------------------------------------------- one data set

def run_data_set(name: str, data_dir: Path, binary: str, port_base: int, args) -> tuple[list[str], dict]:
    lines = []
    if name == "grown":
        grown = grow(data_dir, binary, port_base, args.activations, args.events)
        s = grown["seconds"]
        steps = ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in s.items() if k != "total")
        title = (f"grown: Northwind grown to {args.activations:,} activations and {args.events:,} audit events "
                 f"(growing took {s['total']:.0f} s once: {steps}; cached in {data_dir})")
        want = (args.activations, args.events)
    else:
        title = f"demo: portal dev's demo data as seeded ({data_dir})"
        want = (None, None)
    quiet = quiet_wait(args.quiet_max)
    foreign0, wall0 = foreign_ticks(), time.monotonic()
    dev = PortalDev(binary, data_dir, port_base, site_dir=args.site_dir or None)
    try:
        organization = dev.organization()
        started_in = time.perf_counter() - dev.started
        log(f"## {name}: portal dev on port base {dev.base}, {organization}, ready in {started_in:.1f} s")
        api = api_checks(dev, organization, args.api_samples, args.page_size, name == "grown")
        web = browse(dev, args.samples, args.ready_timeout * 1000, args.chromium)
        foreign, busiest = foreign_seconds(foreign0), foreign_top(foreign0)
        measured_s = time.monotonic() - wall0
    finally:
        dev.stop()
    c = api["checks"]
    problems = expect(c, organization, *want)
    lines.append(f"data set {title}")
    lines.append(f"  checks (Ada, {c['role']}, {organization}): dashboard {c['activated']:,} of {c['available']:,} licenses activated; "
                 f"total_size ListActivations {c['activations']:,} (Connect {c['connect_activations']:,}), "
                 f"ListAuditEvents {c['events']:,} (Connect {c['connect_events']:,}): " + ("ok" if not problems else "FAILED: " + "; ".join(problems)))
    lines.append(f"  portal dev ready {started_in:.1f} s after start; Chromium {web['chromium']}; measuring took {measured_s:.0f} s, "
                 f"other processes used at least {foreign:.1f} CPU-s meanwhile" + (f" ({busiest})" if busiest else "")
                 + (f"; {quiet}" if quiet else ""))
    lines.append(f"  sign-in through /sign-in as Ada choosing Northwind (goto to session cookie): p50 {ms(p50(web['sign_in']))} ms, "
                 f"p90 {ms(p90(web['sign_in']))} ms ({len(web['sign_in'])} contexts)"
                 + (f"; FAILED: {web['sign_in_error']}" if "sign_in_error" in web else ""))
    for page, _ in PAGES:
        if page not in web["pages"]:
            web["pages"][page] = {"cold": [], "warm": [], "notes": ["not measured: signing in failed"]}
    lines.append(f"  {'page':<12} {'mode':<5} {'ready p50':>9} {'p90':>6} {'wall p50':>9} {'p90':>6} {'respEnd':>8} {'DCL':>6} {'apiEnd':>7} "
                 f"{'KB':>6} {'api KB':>7} {'reqs':>5} {'n':>3}  API calls in the page (median ms each) / notes")
    for page, _ in PAGES:
        entry = web["pages"][page]
        for mode in ("cold", "warm"):
            got = entry[mode]
            ready = [s["ready"] for s in got if s["state"] == "ready" and s["ready"] is not None]
            wall = [s["wall"] for s in got if s["wall"] is not None]
            col = lambda key: p50([s[key] for s in got if s.get(key) is not None])  # noqa: E731
            kb = lambda key: "-" if col(key) is None else f"{col(key) / 1024:.1f}"  # noqa: E731
            calls = {}
            for sample in got:
                for name, _, duration, _ in sample.get("calls", []):
                    calls.setdefault(name, []).append(duration)
            note = ", ".join(f"{name} {p50(d):.0f}" for name, d in calls.items())
            if mode == "cold" and entry["notes"]:
                note = "; ".join(filter(None, [note, *entry["notes"]]))
            if not got:
                note = "; ".join(entry["notes"]) if mode == "cold" and entry["notes"] else "not measured"
            lines.append(f"  {page:<12} {mode:<5} {ms(p50(ready)):>9} {ms(p90(ready)):>6} {ms(p50(wall)):>9} {ms(p90(wall)):>6} "
                         f"{ms(col('responseEnd')):>8} {ms(col('domContentLoaded')):>6} {ms(col('apiEnd')):>7} {kb('transfer'):>6} "
                         f"{kb('apiTransfer'):>7} {ms(col('requests')):>5} {len(got):>3}  {note}")
    if web["console"]:
        lines.append("  console errors: " + "; ".join(f"{n}x {text}" for text, n in sorted(web["console"].items(), key=lambda kv: -kv[1])[:5]))
    lines.append(f"  API through the gateway as Ada (page_size {args.page_size}), ms: the first call after start (gRPC), then p50/p90/max of "
                 f"{args.api_samples} calls each over gRPC and over Connect JSON (GET, as the pages read); response bytes")
    lines.append(f"  {'call':<34} {'first':>7}  {'gRPC p50':>8} {'p90':>7} {'max':>7}  {'JSON p50':>8} {'p90':>7} {'max':>7}  {'bytes gRPC':>10} {'JSON':>7}")
    for call, durations in api["grpc"].items():
        first = api["first"].get(call)
        g, j = durations, api["connect"][call]
        b = api["bytes"][call]
        lines.append(f"  {call:<34} {ms(first, 1):>7}  {ms(p50(g), 2):>8} {ms(p90(g), 2):>7} {ms(max(g), 1):>7}  "
                     f"{ms(p50(j), 2):>8} {ms(p90(j), 2):>7} {ms(max(j), 1):>7}  {b[0]:>10,} {b[1]:>7,}")
    return lines, {"api": api, "web": web, "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    parser.add_argument("--portal", required=True)
    parser.add_argument("--data-dir", default=env("DATA_DIR", "/tmp/portal-web-bench"))
    parser.add_argument("--data-sets", default=env("DATA_SETS", "demo grown"))
    parser.add_argument("--samples", type=int, default=int(env("SAMPLES", 5)))
    parser.add_argument("--api-samples", type=int, default=int(env("API_SAMPLES", 30)))
    parser.add_argument("--page-size", type=int, default=int(env("PAGE_SIZE", 50)))
    parser.add_argument("--ready-timeout", type=float, default=float(env("READY_TIMEOUT", 30)))
    parser.add_argument("--activations", type=int, default=int(env("ACTIVATIONS", 100_000)))
    parser.add_argument("--events", type=int, default=int(env("EVENTS", 1_000_000)))
    parser.add_argument("--port-base", type=int, default=int(env("PORT_BASE", 50180)))
    parser.add_argument("--quiet-max", type=float, default=float(env("QUIET_MAX", 120)))
    parser.add_argument("--site-dir", default=env("SITE_DIR", ""),
                        help="serve the portal's files from this folder (portal dev --site-dir) instead of the binary's copy")
    parser.add_argument("--chromium", default=env("PORTAL_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--results", default=env("RESULTS", str(ROOT / "bench" / "results")))
    args = parser.parse_args()
    data_sets = args.data_sets.split()
    unknown = set(data_sets) - {"demo", "grown"}
    if unknown:
        parser.error(f"unknown data sets {sorted(unknown)} (demo, grown)")

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    binary = Path(args.portal)
    modified = time.strftime("%Y-%m-%d %H:%M", time.localtime(binary.stat().st_mtime))
    header = [
        f"# web portal benchmark: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} cores, "
        f"load {' '.join(open('/proc/loadavg').read().split()[:3])}, repo {rev}{'+dirty' if dirty else ''}, portal {binary} (modified {modified})",
        f"# embedded portal (Sources/PortalWeb/Site, as in this tree; the binary embeds the files it was built with): {site_size()}",
        *([f"# the pages measured are served from {args.site_dir} (portal dev --site-dir), not from the binary"] if args.site_dir else []),
        "# cold: a fresh Chromium context signs in as Ada at /sign-in (choosing Northwind), its HTTP cache is cleared (CDP),",
        "#   then page.goto(path); warm: page.reload() in the same context. Each page ready when <main id=\"main\"> has",
        f"#   data-state=\"ready\"; {args.samples} samples each: p50 = median, p90 = nearest rank"
        + (" (of fewer than 10, the slowest)." if args.samples < 10 else "."),
        "# ready: ms from navigation start to data-state=\"ready\" (in the page); wall: ms from goto/reload to Playwright seeing it;",
        "#   respEnd, DCL: Navigation Timing responseEnd and domContentLoadedEventEnd; apiEnd: the last API answer's responseEnd;",
        "#   KB: bytes transferred (document, files and API calls; a 304 counts its headers), api KB: the API calls' share; reqs: requests.",
    ]
    for line in header:
        print(line, flush=True)
    out, raw = list(header), {}
    for name in data_sets:
        print(flush=True)
        lines, raw[name] = run_data_set(name, Path(args.data_dir) / name, str(binary), args.port_base, args)
        for line in lines:
            print(line, flush=True)
        out += [""] + lines
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    if set(data_sets) == {"demo", "grown"}:
        (results / "web-latest.txt").write_text("\n".join(out) + "\n")
        (results / "web-latest.json").write_text(json.dumps(raw, indent=1, default=str) + "\n")
        print(f"\n(results: {results / 'web-latest.txt'}, every sample: {results / 'web-latest.json'})")
    failed = [name for name, r in raw.items() if r["problems"] or any(p["notes"] for p in r["web"]["pages"].values())]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}: a check or a page's readiness (see above)", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
