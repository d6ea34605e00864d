"""Benchmark: the parsers' property-based tests (tests/test_fuzz.py) run long, with counts.

    PYTHONPATH=. python bench/fuzz.py [--examples 2000] [--growth-examples 60] [--seed 0] [--only NAME ...]

For every parser a user feeds (corpus packs, transcript readers, importers, config.toml and its
environment variables, Slack command text) runs `--examples` random inputs through the same
target and invariant as tests/test_fuzz.py (a result or a clear InterviewError naming file and
line; no other exception, hang or write), and prints per parser the inputs tried (generated and
shrunk), the failures found (hypothesis's shrunk input for each distinct one) and the seconds.
Then the growth search: random units repeated to ~50 kB and 200 kB, where 4x the input must not
take 8x the CPU time. Then the large inputs: each shape of line that once made a reader quadratic,
at 1 MB and 4 MB, timed (CPU seconds). Writes bench/results/fuzz.json; ~10 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write  # noqa: E402


def fuzz(name: str, examples: int, seed: int) -> dict:
    from hypothesis import HealthCheck, given, seed as hypothesis_seed, settings

    from tests.test_fuzz import TARGETS, run_one

    strategy, target = TARGETS[name]
    tried = 0

    def one(value):
        nonlocal tried
        tried += 1
        run_one(target, value)

    test = settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))(given(strategy)(one))
    start = time.perf_counter()
    failures = _failures(hypothesis_seed(seed)(test))
    return {"parser": name, "inputs_tried": tried, "failures_found": len(failures), "failures": failures,
            "seconds": round(time.perf_counter() - start, 1)}


def _failures(test) -> list[dict]:
    """Run a hypothesis test: each distinct failure it reports, with its (shrunk) input."""
    try:
        test()
    except Exception as e:  # noqa: BLE001 - what the parser raised is the result here
        found = e.exceptions if isinstance(e, ExceptionGroup) else [e]
        return [{"error": f"{type(f).__name__}: {str(f).splitlines()[0][:200] if str(f) else ''}",
                 "input": "\n".join(getattr(f, "__notes__", []))[:600]} for f in found]
    return []


def growth(name: str, examples: int, seed: int, base: int = 50_000) -> dict:
    """A random unit repeated between a prefix and a suffix to ~`base` characters and to 4x that:
    a parse that takes 8x the CPU time (and over 20 ms), or 20 s, for 4x the input is a failure
    (super-linear: a hang on a large file). Not shrunk: each try of a hang costs 20 s."""
    from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings

    from tests.test_fuzz import GROWTH_TARGETS, cpu_seconds

    strategy, parse = GROWTH_TARGETS[name]
    tried, worst = 0, 0.0

    def one(grown: tuple[str, str, str]):
        nonlocal tried, worst
        prefix, unit, suffix = grown
        tried += 1
        times = [cpu_seconds(parse, prefix + unit * (size // len(unit)) + suffix, time_limit=20)
                 for size in (base, 4 * base)]
        worst = max(worst, times[1] / max(times[0], 1e-3))
        assert times[1] < max(8 * times[0], 0.02), f"4x the input took {times[1] / max(times[0], 1e-6):.0f}x the time"

    test = settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck))(given(strategy)(one))
    start = time.perf_counter()
    failures = _failures(hypothesis_seed(seed)(test))
    return {"parser": name, "inputs_tried": tried, "failures_found": len(failures), "failures": failures,
            "worst_ratio": round(worst, 1), "seconds": round(time.perf_counter() - start, 1)}


def large_inputs() -> list[dict]:
    """CPU seconds for each adversarial shape at 1 MB and 4 MB: linear parsers take ~4x."""
    from tests.test_fuzz import LARGE_SHAPES, cpu_seconds

    out = []
    for name, (make, parse) in LARGE_SHAPES.items():
        small, large = cpu_seconds(parse, make(1_000_000)), cpu_seconds(parse, make(4_000_000))
        out.append({"shape": name, "cpu_s_1mb": round(small, 3), "cpu_s_4mb": round(large, 3),
                    "ratio": round(large / max(small, 1e-6), 1)})
        print(f"{name:40s} 1 MB {small:7.3f} s   4 MB {large:7.3f} s", file=sys.stderr)
    return out


def main() -> None:
    from tests.test_fuzz import GROWTH_TARGETS, TARGETS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=2000, help="random inputs per parser")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=list(TARGETS), help="these parsers only")
    ap.add_argument("--growth-examples", type=int, default=60, help="random units grown per parser (0: none)")
    ap.add_argument("--no-large", action="store_true", help="skip the large inputs")
    args = ap.parse_args()
    results = []
    for name in args.only or TARGETS:
        r = fuzz(name, args.examples, args.seed)
        results.append(r)
        print(f"{name:24s} {r['inputs_tried']:6d} inputs  {r['failures_found']} failures  {r['seconds']:7.1f} s",
              file=sys.stderr)
        for f in r["failures"]:
            print(f"    {f['error']}\n      {f['input'][:300]}", file=sys.stderr)
    grown = [growth(name, args.growth_examples, args.seed) for name in GROWTH_TARGETS
             if args.growth_examples and (not args.only or name in args.only)]
    for r in grown:
        print(f"grown {r['parser']:18s} {r['inputs_tried']:6d} inputs  {r['failures_found']} failures  "
              f"worst 4x/1x {r['worst_ratio']:5.1f}  {r['seconds']:7.1f} s", file=sys.stderr)
        for f in r["failures"]:
            print(f"    {f['error']}\n      {f['input'][:300]}", file=sys.stderr)
    write("fuzz", {"examples_per_parser": args.examples, "seed": args.seed,
                   "inputs_tried": sum(r["inputs_tried"] for r in results + grown),
                   "failures_found": sum(r["failures_found"] for r in results + grown),
                   "parsers": results, "growth": grown, "large_inputs": [] if args.no_large else large_inputs()})


if __name__ == "__main__":
    main()
