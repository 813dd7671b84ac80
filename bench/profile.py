"""Where the services spend their CPU under load: starts the bench stack, loads
CreateReservation through Envoy at a fixed rate (or, with --load books, GET /v1/books
in wrk's closed loop, as make bench does; with --load catchup, the bench's catch-up:
alert stopped while --events outcomes pile up at --rate, then started), and samples
each service (with catchup: alert, from its start to its last notification) with
py-spy meanwhile. Writes collapsed stacks to build/profile/ and
prints, per service, the functions with the most samples on CPU (self and
inclusive) and the share of samples per thread.

    make bench-profile [PROFILE_ARGS='--rate 100 --seconds 20 --backend postgresql']
    make bench-profile PROFILE_ARGS='--load books --seconds 10'
    make bench-profile PROFILE_ARGS='--load catchup --events 20000 --rate 400'
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.run import Bench, Config
from bench.stack import BACKENDS, ROOT
from services.catalogue import NAMES as SERVICES

OUT = ROOT / "build" / "profile"


def summarize(path: Path, top: int) -> str:
    """py-spy's raw format: one 'thread;frame;frame;... count' line per distinct stack."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        self_time[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    if not total:
        return "  no samples"

    def table(counter, title):
        rows = [f"  {title}"] + [f"    {n / total:6.1%}  {frame[:150]}" for frame, n in counter.most_common(top)]
        return "\n".join(rows)

    return "\n".join(
        [
            f"  {total} samples on CPU",
            table(threads, "by thread"),
            table(self_time, "self"),
            table(inclusive, "inclusive"),
        ]
    )


def catch_up(bench: Bench, a: argparse.Namespace, spy) -> None:
    """The bench's catch-up phase with py-spy on alert from its start to its last
    notification: its rate, its CPU per event and where that CPU goes."""
    bench.cfg.catchup_n = a.events
    piled = bench.pile_up(a.rate)
    spied: list[subprocess.Popen] = []

    def attach() -> None:
        bench.stack.wait_serving("alert")  # py-spy needs the interpreter up: the first events may pass unsampled
        spied.append(spy("alert", 600))  # ends with alert's process, which catch_up stops when done

    figures = bench.catch_up(piled, on_start=attach)
    for s in spied:
        s.send_signal(signal.SIGINT)  # if it has not seen the process end yet: SIGINT writes its file
        s.wait(60)
    print(
        f"catch-up: {piled} outcomes, {figures['catchup_eps']:.0f} events/s after the first notification "
        f"({figures['catchup_start_s']:.2f} s after start); "
        f"alert's CPU {figures['catchup_alert_cpu_per_1000']:.3f} ms per event"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rate", type=float, default=100, help="reservations per second through Envoy REST")
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--backend", choices=BACKENDS, default="sqlite", help="the services' database")
    p.add_argument(
        "--load", choices=("reservations", "books", "catchup"), default="reservations", help="what is loaded"
    )
    p.add_argument("--events", type=int, default=20000, help="with --load catchup: outcomes piled up for alert")
    p.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL: Python's own CPU, without threads waiting in C or for the GIL",
    )
    a = p.parse_args(argv)
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not py_spy:
        print("bench.profile: py-spy is not installed (make setup installs it)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bookrental-profile-"))
    # The stack starts on new topics and keeps them: py-spy follows the processes it started with.
    bench = Bench(Config(reps=1), workdir, a.backend)
    try:
        bench.start()

        def spy(name: str, seconds: float) -> subprocess.Popen:
            return subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(bench.stack.procs[name].pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--threads",
                    *(["--gil"] if a.gil else []),
                    "--output",
                    str(OUT / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )

        if a.load == "catchup":
            catch_up(bench, a, spy)
            print(f"\n== alert ({OUT / 'alert.txt'})\n{summarize(OUT / 'alert.txt', a.top)}")
            return 0
        spies = {name: spy(name, a.seconds) for name in SERVICES}
        cpu0 = bench.stack.cpu_seconds()
        if a.load == "books":
            r = bench.wrk("books", a.seconds)
            cpu1 = bench.stack.cpu_seconds()
            pages = r["rate"] * a.seconds
            print(
                f"load: GET /v1/books {r['rate']:.0f} pages/s for {a.seconds} s (p50 {r['p50_us'] / 1000:.1f} ms, "
                f"{r['errors']} errors); CPU ms per page: "
                + ", ".join(f"{k} {(cpu1[k] - cpu0.get(k, 0)) * 1000 / max(pages, 1):.2f}" for k in cpu1)
            )
        else:
            r = bench._reservation_load("rest", a.seconds, a.rate)
            cpu1 = bench.stack.cpu_seconds()
            print(
                f"load: {r['rate']:.0f} reservations/s for {a.seconds} s, kept up: {r['kept_up']}, "
                f"drain {r['drain_s']} s; CPU s per 1,000: "
                + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_per_1000"].items())
            )
        for spied in spies.values():
            spied.wait(60)
        print("CPU s during the load: " + ", ".join(f"{k} {cpu1[k] - cpu0.get(k, 0):.1f}" for k in cpu1))
        for name in SERVICES:
            print(f"\n== {name} ({OUT / f'{name}.txt'})\n{summarize(OUT / f'{name}.txt', a.top)}")
    finally:
        bench.stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
