"""Benchmark: a 100,000-task parametric sweep validated and rendered, against a plain-YAML baseline.

    .venv/bin/python bench/manifest_sweep.py [--tasks 100000] [--pure-baseline]

Each measurement runs in a fresh interpreter, so its peak RSS (VmHWM) is its own.

* batchrun: ``load_workload`` (YAML + schema + semantic checks + expansion + dependencies + digest) on a
  small manifest whose factory makes N tasks, then ``render_workload`` as YAML and as JSON.
* baseline: the same N tasks already expanded in a YAML file (what the render produces), read with
  ``yaml.load(CSafeLoader)`` (``yaml.safe_load``, pure Python, with --pure-baseline) and written with
  ``json.dumps``: the least any tool must do to read and write that much desired state.

Target: batchrun under 10 s and 1 GiB for 100,000 tasks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: bench-sweep}}
variables: {{a: {a}, b: {b}}}
storage:
  outputs: {{container: sweep-out}}
pool:
  id: bench-pool
  vmSize: standard_d2s_v3
  targetDedicatedNodes: 2
  taskSlotsPerNode: 2
job:
  id: bench-job
  onAllTasksComplete: terminatejob
  tasks:
    - id: sim-${{x:04d}}-${{y:04d}}
      foreach:
        x: {{range: [1, "${{a}}"]}}
        y: {{range: [1, "${{b}}"]}}
      commandLine: /bin/sh -c "echo x=${{x}} y=${{y}} > result.txt"
      environmentSettings:
        - {{name: X, value: "${{x}}"}}
        - {{name: Y, value: "${{y}}"}}
      constraints: {{maxWallClockTime: PT5M, maxTaskRetryCount: 1}}
      outputs: [{{pattern: result.txt, path: "results/${{x}}/${{y}}.txt"}}]
"""


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child would
    report the peak of the parent that forked it (which renders the whole workload for the baseline)."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def run_batchrun(manifest: Path) -> dict[str, float]:
    from batchrun.manifest import load_workload, render_workload

    started, cpu_started = time.perf_counter(), time.process_time()
    workload = load_workload(manifest, max_tasks=10_000_000)
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    loading_peak = peak_rss_mib()  # the peak so far: the process's start and the loading
    as_yaml = render_workload(workload, "yaml")
    rendered_yaml, cpu_yaml = time.perf_counter(), time.process_time()
    as_json = render_workload(workload, "json")
    rendered_json, cpu_json = time.perf_counter(), time.process_time()
    assert workload.job is not None
    return {
        "tasks": len(workload.job.tasks),
        "validate_s": loaded - started,
        "render_yaml_s": rendered_yaml - loaded,
        "render_json_s": rendered_json - rendered_yaml,
        "total_s": rendered_yaml - started,
        "validate_cpu_s": cpu_loaded - cpu_started,
        "render_yaml_cpu_s": cpu_yaml - cpu_loaded,
        "render_json_cpu_s": cpu_json - cpu_yaml,
        "total_cpu_s": cpu_yaml - cpu_started,
        "peak_rss_mib": peak_rss_mib(),
        "loading_peak_rss_mib": loading_peak,
        "yaml_bytes": len(as_yaml),
        "json_bytes": len(as_json),
    }


def run_baseline(expanded: Path, pure: bool) -> dict[str, float]:
    import yaml

    loader = yaml.SafeLoader if pure else yaml.CSafeLoader
    started, cpu_started = time.perf_counter(), time.process_time()
    with expanded.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=loader)
    loaded = time.perf_counter()
    text = json.dumps(document, indent=2)
    dumped, cpu_dumped = time.perf_counter(), time.process_time()
    return {
        "tasks": len(document["job"]["tasks"]),
        "load_s": loaded - started,
        "dump_s": dumped - loaded,
        "total_s": dumped - started,
        "total_cpu_s": cpu_dumped - cpu_started,
        "peak_rss_mib": peak_rss_mib(),
        "json_bytes": len(text),
    }


def measure(mode: str, path: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--pure-baseline", action="store_true", help="also time yaml.safe_load (pure Python)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        mode, path = arguments.child
        if mode == "batchrun":
            result = run_batchrun(Path(path))
        else:
            result = run_baseline(Path(path), pure=mode == "pure")
        print(json.dumps(result))
        return 0

    side_a = math.isqrt(arguments.tasks)
    side_b = arguments.tasks // side_a
    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / "sweep.yaml"
        manifest.write_text(MANIFEST.format(a=side_a, b=side_b), encoding="utf-8")
        # The baseline's input: the same desired state already expanded, as batchrun renders it.
        from batchrun.manifest import load_workload, render_workload

        expanded = Path(folder) / "expanded.yaml"
        expanded.write_text(render_workload(load_workload(manifest, max_tasks=10_000_000), "yaml"))
        ours = measure("batchrun", manifest)
        base = measure("baseline", expanded)
        pure = measure("pure", expanded) if arguments.pure_baseline else None

    tasks = int(ours["tasks"])
    load = os.getloadavg()[0]
    print(
        f"manifest sweep: {tasks:,} tasks ({side_a} x {side_b}), Python {sys.version.split()[0]},"
        f" load average {load:.1f}"
    )
    print(
        f"  batchrun  validate+expand {ours['validate_s']:6.2f} s ({ours['validate_cpu_s']:.2f} s CPU)"
        f" | render yaml {ours['render_yaml_s']:5.2f} s ({ours['render_yaml_cpu_s']:.2f} s CPU)"
        f" | render json {ours['render_json_s']:5.2f} s ({ours['render_json_cpu_s']:.2f} s CPU)"
        f" | peak RSS {ours['peak_rss_mib']:7.1f} MiB ({ours['loading_peak_rss_mib']:.1f} MiB once loaded)"
    )
    print(
        f"  baseline  yaml.load(CSafeLoader) {base['load_s']:6.2f} s | json.dumps {base['dump_s']:5.2f} s"
        f" | total {base['total_s']:6.2f} s ({base['total_cpu_s']:.2f} s CPU)"
        f" | peak RSS {base['peak_rss_mib']:7.1f} MiB"
    )
    print(
        f"  validate + render yaml: {ours['total_s']:.2f} s wall, {ours['total_cpu_s']:.2f} s CPU;"
        f" ratio batchrun/baseline: time {ours['total_s'] / base['total_s']:.2f}x"
        f" (CPU {ours['total_cpu_s'] / base['total_cpu_s']:.2f}x),"
        f" peak RSS {ours['peak_rss_mib'] / base['peak_rss_mib']:.2f}x"
    )
    if pure is not None:
        print(
            f"  baseline  yaml.safe_load (pure) {pure['total_s']:6.2f} s total | peak RSS"
            f" {pure['peak_rss_mib']:7.1f} MiB"
            f" | ratio batchrun/pure: time {ours['total_s'] / pure['total_s']:.2f}x"
        )
    within = ours["total_cpu_s"] < 10 and ours["peak_rss_mib"] < 1024
    print(f"  target (validate + render < 10 s CPU, < 1 GiB): {'met' if within else 'NOT met'}")
    if load > 2:
        print("  note: the machine is busy (load above its 2 cores); wall times include waiting for a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
