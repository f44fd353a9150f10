#!/usr/bin/python3
"""Starts N ranks of a program the way torchrun would, each under `fpscope record`.

Debian's torchrun (python3-torch 1.13) fails under Python 3.11, so this launcher sets the
variables torch.distributed's env:// rendezvous reads (MASTER_ADDR, MASTER_PORT, RANK,
WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) itself. Each rank runs
    FPSCOPE record -o 'OUT/run-%r.fpst' -- PROGRAM ARGS...
so the probe expands %r from RANK (traces/include/fpscope/run_env.h): OUT/run-0.fpst, ...
Without --fpscope the program runs unrecorded. Exit status: 0 when every rank exited 0, else the
first non-zero one (all ranks are killed when one fails or the timeout passes).

  launch.py --ranks 2 --out DIR --fpscope build/bin/fpscope -- tests/ranks/ddp_train.py --steps 6
"""
import argparse
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_command(args, program):
    cmd = [sys.executable] + program
    if args.fpscope:
        out = os.path.join(args.out, "run-%r.fpst")
        cmd = [args.fpscope, "record", "-o", out] + args.record_arg + ["--"] + cmd
    return cmd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--out", default=".", help="directory of the traces")
    ap.add_argument("--fpscope", default="", help="the fpscope CLI (omit: no recording)")
    ap.add_argument("--record-arg", action="append", default=[],
                    help="an extra argument of `fpscope record` (repeatable)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    args = ap.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program or args.ranks < 1:
        ap.error("need --ranks >= 1 and a program after --")
    os.makedirs(args.out, exist_ok=True)
    port = free_port()
    procs = []
    for r in range(args.ranks):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(r),
                   WORLD_SIZE=str(args.ranks), LOCAL_RANK=str(r),
                   LOCAL_WORLD_SIZE=str(args.ranks))
        procs.append(subprocess.Popen(rank_command(args, program), env=env))
    deadline = time.monotonic() + args.timeout
    status = 0
    while procs:
        for p in list(procs):
            rc = p.poll()
            if rc is None:
                continue
            procs.remove(p)
            if rc != 0 and status == 0:
                status = rc
        if status != 0 or time.monotonic() > deadline:
            if status == 0:
                print(f"launch.py: timeout after {args.timeout} s", file=sys.stderr)
                status = 124
            for p in procs:
                p.kill()
                p.wait()
            break
        time.sleep(0.05)
    return status


if __name__ == "__main__":
    sys.exit(main())
