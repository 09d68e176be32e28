#!/usr/bin/env python3
"""Smoke every `voxguard simulate` scenario in both media at small size.

Text: the nine CRM scenarios, 40 calls, 10 at once, one after the other,
beside the first spoken run. Audio: all seventeen scenarios (CRM faults and
voice faults), a few spoken calls each. The first spoken run renders the
agent's phrase lines into a phrase store; the rest start once it has (its
log says so) and read them back, as a restarted worker does, all side by
side (a spoken call is then mostly real-time waiting). Fails on any invariant violation or a missed voice
target; the audio runs' own exit status already covers lost caller turns
and a tool call the caller did not hear within 750 ms.

usage: simulate_smoke.py VOXGUARD_BINARY [text|audio|both]   (default: both)
"""
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TEXT = ["healthy", "slow", "errors", "hang", "flaky", "rate-limited", "malformed",
        "outage-recovery", "mixed"]
VOICE = ["stt-drop", "stt-down", "tts-slow", "tts-hang", "tts-down", "llm-hang",
         "packet-loss", "barge-in"]
AUDIO_CALLS = 2
# Spoken runs side by side after the first (a spoken call with its phrase
# lines already rendered is mostly real-time waiting).
AUDIO_AT_ONCE = int(os.environ.get("VOXGUARD_SMOKE_AT_ONCE", "16"))
# A run's first seconds are its busiest (the callers' lines are rendered,
# calls connect): the first runs of a wave start this far apart.
AUDIO_STAGGER_S = float(os.environ.get("VOXGUARD_SMOKE_STAGGER_S", "3"))
INVARIANTS = ("budget_overruns", "unpaired_tool_calls", "state_violations",
              "immediate_repeats", "false_promises", "panics", "sessions_failed")
AUDIO_INVARIANTS = ("lost_caller_turns", "truncation_mismatches", "voice_reports_missing")


def summary(s):
    return f"{s['p50']:.0f}/{s['p99']:.0f}/{s['max']:.0f}"


def problems_of(report):
    problems = [k for k in INVARIANTS if report.get(k, 0) != 0]
    if report["first_speech_ms"]["max"] > 750:
        problems.append(f"first_speech_ms.max {report['first_speech_ms']['max']:.0f} > 750")
    if report["resolution_ms"]["max"] > 3500:
        problems.append(f"resolution_ms.max {report['resolution_ms']['max']:.0f} > 3500")
    if report["scenario"] == "outage-recovery" and report["media"] == "text":
        recovered = [s for s, t in report["breaker_transitions"].items()
                     if "open" in t and t[-1] == "closed"]
        if not recovered:
            problems.append("no breaker opened and closed again during outage-recovery")
    if report["media"] == "audio":
        problems += [k for k in AUDIO_INVARIANTS if report.get(k, 0) != 0]
        if report["first_audio_after_tool_ms"]["max"] > 750:
            problems.append("first_audio_after_tool_ms.max "
                            f"{report['first_audio_after_tool_ms']['max']:.0f} > 750")
    return problems


def phrase_store(binary):
    """Where the spoken runs keep their rendered phrase lines: the first runs
    render them, later runs read them back, as a restarted worker does."""
    target = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
    return os.environ.get("VOXGUARD_PHRASE_CACHE") or os.path.join(target, "simulate-phrases")


def run(binary, scenario, media, calls, concurrency, delay=0.0, rendered=None):
    """One simulate run; `rendered` (an Event) is set once its worker has
    rendered (or read back) every phrase line, or when it ends."""
    time.sleep(delay)
    command = [binary, "simulate", "--scenario", scenario, "--calls", str(calls),
               "--concurrency", str(concurrency), "--seed", "7", "--json",
               "--media", media]
    env = dict(os.environ, VOXGUARD_PHRASE_CACHE=phrase_store(binary))
    if rendered is not None:
        env["VOXGUARD_LOG"] = "error,voxguard::speech::cache=info"
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    stderr = []

    def read_stderr():
        for line in child.stderr:
            stderr.append(line)
            if rendered is not None and "phrase cache rendered" in line:
                rendered.set()

    reader = threading.Thread(target=read_stderr)
    reader.start()
    stdout = child.stdout.read()
    child.wait()
    reader.join()
    if rendered is not None:
        rendered.set()
    stderr = "".join(stderr)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return scenario, media, None, [f"exit {child.returncode}, no report: {stderr[-800:]}"]
    problems = problems_of(report)
    if child.returncode != 0 and not problems:
        problems.append(f"exit {child.returncode}: {stderr[-400:]}")
    return scenario, media, report, problems


def main():
    binary = sys.argv[1]
    media = sys.argv[2] if len(sys.argv) > 2 else "both"
    results = []
    with ThreadPoolExecutor(2) as alongside:
        # The typed runs go one after the other beside the first spoken run.
        text = alongside.submit(lambda: [run(binary, s, "text", 40, 10) for s in TEXT]
                                if media in ("text", "both") else [])
        if media in ("audio", "both"):
            # The first spoken run renders every phrase line in every voice
            # into the store; the others start once it has, and read them back.
            scenarios = TEXT + VOICE
            rendered = threading.Event()
            first = alongside.submit(run, binary, scenarios[0], "audio", AUDIO_CALLS,
                                     AUDIO_CALLS, 0.0, rendered)
            rendered.wait()
            with ThreadPoolExecutor(AUDIO_AT_ONCE) as pool:
                rest = list(pool.map(
                    lambda job: run(binary, job[1], "audio", AUDIO_CALLS, AUDIO_CALLS,
                                    AUDIO_STAGGER_S * job[0] if job[0] < AUDIO_AT_ONCE else 0.0),
                    enumerate(scenarios[1:])))
        results += text.result()
        if media in ("audio", "both"):
            results += [first.result()] + rest
    failed = False
    for scenario, media, report, problems in results:
        if report is not None:
            print(json.dumps(report))
            line = f"simulate {media} {scenario}: first speech {summary(report['first_speech_ms'])}"
            if media == "audio":
                line += (f", mouth to ear {summary(report['mouth_to_ear_ms'])}"
                         f", tool → audio {summary(report['first_audio_after_tool_ms'])}"
                         f", dead air {summary(report['dead_air_ms'])}")
            print(line)
        print(f"simulate {media} {scenario}: " + ("ok" if not problems else "FAILED: " + "; ".join(problems)))
        failed |= bool(problems)
    table([r for r in results if r[1] == "audio" and r[2] is not None])
    sys.exit(1 if failed else 0)


def table(results):
    """The spoken runs as the README's markdown table."""
    if not results:
        return
    print("| scenario | turns | tool calls | mouth to ear p50 / p99 / max (ms) "
          "| tool → first audio (ms) | dead air (ms) | interruption stop (ms) | lost turns "
          "| typed lines | truncation mismatches | underruns | ok / fallback / unknown |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, _, r, _ in results:
        def spread(key):
            s = r[key]
            return f"{s['p50']:.0f} / {s['p99']:.0f} / {s['max']:.0f}"
        stop = spread("interruption_stop_ms") if r["interruption_stop_ms"]["max"] > 0 else "—"
        outcomes = r.get("outcomes", {})
        print(f"| {scenario} | {r['turns']} | {r['tool_calls']} | {spread('mouth_to_ear_ms')} "
              f"| {spread('first_audio_after_tool_ms')} | {spread('dead_air_ms')} | {stop} "
              f"| {r['lost_caller_turns']} | {r['typed_lines']} | {r['truncation_mismatches']} "
              f"| {r['playout_underruns']} | {outcomes.get('ok', 0)} / {outcomes.get('fallback', 0)} "
              f"/ {outcomes.get('unknown_outcome', 0)} |")


if __name__ == "__main__":
    main()
