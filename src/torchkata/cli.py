"""The ``torchkata`` command: ``ls``, ``run``, ``tour`` and ``doctor``. It parses, then calls."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from torchkata import registry
from torchkata.config import ConfigError, from_dict, make_config
from torchkata.runs import DEVICES, Run

EXIT_USAGE = 2

LS_EXAMPLES = """examples:
  torchkata ls
"""
RUN_EXAMPLES = """examples:
  torchkata run norm                              # the quick preset, seed 0
  torchkata run norm --preset full --seed 1
  torchkata run norm --set epochs=3 --set batch_sizes=2,8,32
  torchkata run distributed --nproc 2             # the recipe on 2 processes (torchrun)
  torchkata run distributed --nproc 8 --nnodes 2 --node-rank 0 --rdzv-endpoint host0:29500
  torchkata run --resume runs/norm-20261128-101500-000000   # continue a killed run
"""
DOCTOR_EXAMPLES = """examples:
  torchkata doctor --demo                          # the gallery of planted bugs
  torchkata doctor mypackage.debug:make_case       # make_case() -> (model, batch, loss_fn)

The factory returns (model, batch, loss_fn) or a dict of diagnose()'s keyword arguments
(model, batch, loss_fn, optimizer_factory, train_step, eval_data, ...).
Exit status: 0 when no check fails, 1 when one does, 2 for a usage error.
"""
TOUR_EXAMPLES = """examples:
  torchkata tour                                   # every recipe's quick preset, one report
  torchkata tour --only norm --out /tmp/tour
"""


THREADS_HELP = "CPU threads for torch (default: 1, fastest for the recipes' small models)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="torchkata",
        description="Ten advanced PyTorch tips as exact components, recipes and tests.",
        epilog="examples:\n  torchkata ls\n  torchkata run norm\n  torchkata tour\n"
        "  torchkata doctor --demo\n",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("ls", help="list the recipes", epilog=LS_EXAMPLES)

    run = sub.add_parser("run", help="run one recipe", epilog=RUN_EXAMPLES)
    run.add_argument("name", nargs="?", help="recipe name (see `torchkata ls`)")
    run.add_argument("--preset", default="quick", help="named config overrides (default: quick)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run.add_argument("--device", choices=DEVICES, default="auto", help="default: auto")
    run.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    run.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, type-checked; repeatable; tuples as a,b,c",
    )
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run in its folder")
    launch = run.add_argument_group(
        "several processes (torchrun)",
        "--nproc starts `python -m torch.distributed.run` for recipes that support it;\n"
        "with --nnodes > 1, run the same command on every machine, each with its --node-rank.",
    )
    launch.add_argument("--nproc", type=int, metavar="N", help="processes on this machine")
    launch.add_argument("--nnodes", type=int, default=1, help="machines (default: 1)")
    launch.add_argument("--node-rank", type=int, default=0, help="this machine's index (0)")
    launch.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="machine 0's address")

    doctor = sub.add_parser(
        "doctor", help="run the training sanity checks on a model", epilog=DOCTOR_EXAMPLES
    )
    doctor.add_argument("factory", nargs="?", metavar="MODULE:FACTORY")
    doctor.add_argument("--demo", action="store_true", help="diagnose the gallery of bugs")
    doctor.add_argument("--steps", type=int, default=100, help="overfit-batch steps (100)")
    doctor.add_argument("--seed", type=int, default=0, help="default: 0")
    doctor.add_argument("--threads", type=int, default=1, help=THREADS_HELP)

    tour = sub.add_parser(
        "tour", help="run every recipe's preset and write one report", epilog=TOUR_EXAMPLES
    )
    tour.add_argument("--preset", default="quick", help="default: quick")
    tour.add_argument("--only", help="comma-separated recipe names (default: all ten)")
    tour.add_argument("--seed", type=int, default=0, help="default: 0")
    tour.add_argument("--device", choices=DEVICES, default="auto", help="default: auto")
    tour.add_argument("--out", help="tour folder (default: runs/tour-<timestamp>)")
    tour.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    return parser


def _error(message: str) -> int:
    sys.stderr.write(f"torchkata: error: {message}\n")
    return EXIT_USAGE


def _unknown(name: str) -> int:
    known = ", ".join(t.name for t in registry.TIPS)
    return _error(f"unknown recipe {name!r}; known recipes: {known}")


def _cmd_ls() -> int:
    rows = [("tip", "recipe", "presets", "what it does")]
    for tip in registry.TIPS:
        presets = ", ".join(tip.load().PRESETS)
        rows.append((str(tip.number), tip.name, presets, tip.summary))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return 0


def _command_line(args: argparse.Namespace) -> str:
    parts = ["torchkata", "run", args.name, "--preset", args.preset, "--seed", str(args.seed)]
    if args.device != "auto":
        parts += ["--device", args.device]
    if args.threads != 1:
        parts += ["--threads", str(args.threads)]
    for assignment in args.overrides:
        parts += ["--set", assignment]
    if args.nproc is not None:
        parts += ["--nproc", str(args.nproc)]
        if args.rdzv_endpoint:
            parts += ["--nnodes", str(args.nnodes), "--node-rank", str(args.node_rank)]
            parts += ["--rdzv-endpoint", args.rdzv_endpoint]
    return shlex.join(parts)


def _launch_args_error(args: argparse.Namespace) -> str | None:
    if args.nproc is None:
        if args.nnodes != 1 or args.node_rank != 0 or args.rdzv_endpoint:
            return "--nnodes, --node-rank and --rdzv-endpoint need --nproc"
        return None
    if args.nproc < 1:
        return f"--nproc: expected >= 1, got {args.nproc}"
    if args.nnodes < 1:
        return f"--nnodes: expected >= 1, got {args.nnodes}"
    if not 0 <= args.node_rank < args.nnodes:
        return (
            f"--node-rank: expected 0 <= node rank < --nnodes={args.nnodes}, got {args.node_rank}"
        )
    if args.nnodes > 1 and not args.rdzv_endpoint:
        return f"--rdzv-endpoint: expected HOST:PORT of machine 0 with --nnodes={args.nnodes}"
    if args.rdzv_endpoint and not args.rdzv_endpoint.rpartition(":")[2].isdigit():
        return f"--rdzv-endpoint: expected HOST:PORT, got {args.rdzv_endpoint!r}"
    return None


def _launch(args: argparse.Namespace, run: Run) -> int:
    """Run the recipe in ``run``'s folder under torchrun: ``--nproc`` processes here."""
    import torch

    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.nproc)]
    if args.rdzv_endpoint:
        command += ["--nnodes", str(args.nnodes), "--node_rank", str(args.node_rank)]
        command += ["--rdzv_endpoint", args.rdzv_endpoint]
    else:
        command += ["--standalone"]  # one machine: torchrun picks a free port itself
    # Every process opens the folder made here (rank 0 writes to it) as a resumed run.
    command += ["-m", "torchkata", "run", "--resume", str(run.dir)]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.run(command, env=env).returncode


def _supports_distributed(name: str, module) -> str | None:
    if getattr(module, "SUPPORTS_DISTRIBUTED", False):
        return None
    able = [t.name for t in registry.TIPS if getattr(t.load(), "SUPPORTS_DISTRIBUTED", False)]
    return f"--nproc: recipe {name!r} trains in one process; recipes that support --nproc: " + (
        ", ".join(able) or "none"
    )


def _cmd_run(args: argparse.Namespace) -> int:
    problem = _launch_args_error(args)
    if problem:
        return _error(problem)
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.json").is_file():
            return _error(f"--resume: {run_dir} is not a run folder (no config.json)")
        saved = json.loads((run_dir / "config.json").read_text())
        if args.name and args.name != saved["recipe"]:
            return _error(f"--resume: {run_dir} is a {saved['recipe']!r} run, not {args.name!r}")
        tip = registry.get(saved["recipe"])
        module = tip.load()
        config = from_dict(module.Config, saved["config"])
        settings = dict(seed=saved["seed"], device=saved["device"], resume=run_dir)
        settings.update(preset=saved["preset"], threads=saved["threads"])
    else:
        if not args.name:
            return _error("run: a recipe name is required (or --resume RUN_DIR)")
        try:
            tip = registry.get(args.name)
        except KeyError:
            return _unknown(args.name)
        module = tip.load()
        try:
            config = make_config(module.Config, module.PRESETS, args.preset, args.overrides)
        except ConfigError as exc:
            return _error(str(exc))
        settings = dict(seed=args.seed, device=args.device, out=args.out, preset=args.preset)
        settings.update(threads=args.threads, command=_command_line(args))
    if args.nproc is not None:
        problem = _supports_distributed(tip.name, module)
        if problem:
            return _error(problem)
    if args.nproc is not None and args.node_rank != 0 and not args.resume:
        # Only machine 0's rank 0 writes: the other machines' processes get a folder to
        # open that is thrown away afterwards.
        with tempfile.TemporaryDirectory(prefix="torchkata-node-") as scratch:
            settings["out"] = scratch
            return _launch(args, Run(tip.name, config, **settings))
    run = Run(tip.name, config, **settings)
    if args.nproc is not None:
        return _launch(args, run)
    module.run(config, run)
    if run.is_main:
        print(run.dir)
    return 0


def _cmd_tour(args: argparse.Namespace) -> int:
    from torchkata.report import write_tour_report

    tips = registry.TIPS
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        for name in names:
            if not any(t.name == name for t in tips):
                return _unknown(name)
        tips = [t for t in tips if t.name in names]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"tour-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    run_dirs, failures = [], {}
    for tip in tips:
        module = tip.load()
        try:
            config = make_config(module.Config, module.PRESETS, args.preset)
        except ConfigError as exc:
            return _error(str(exc))
        command = f"torchkata run {tip.name} --preset {args.preset} --seed {args.seed}"
        run = Run(
            tip.name,
            config,
            seed=args.seed,
            device=args.device,
            out=out,
            preset=args.preset,
            threads=args.threads,
            command=command,
        )
        try:
            module.run(config, run)
        except Exception as exc:  # one failing recipe must not lose the others' results
            failures[tip.name] = f"{type(exc).__name__}: {exc}"
            sys.stderr.write(f"torchkata: recipe {tip.name} failed: {failures[tip.name]}\n")
            continue
        run_dirs.append(run.dir)
    _, index_html = write_tour_report(run_dirs, out, failures)
    print(index_html)
    return 1 if failures else 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    import importlib

    import torch

    from torchkata.doctor import diagnose

    if args.demo == bool(args.factory):
        return _error("doctor: give either MODULE:FACTORY or --demo")
    if args.steps < 1:
        return _error(f"--steps: expected >= 1, got {args.steps}")
    torch.set_num_threads(args.threads)
    if args.demo:
        from torchkata.doctor.recipe import Config, caught, diagnose_gallery, gallery_table

        results = list(diagnose_gallery(Config(steps=args.steps), args.seed))
        print(gallery_table(results))
        return 0 if all(caught(case, d) for case, d, _ in results) else 1
    module_name, sep, attr = args.factory.partition(":")
    if not sep or not module_name or not attr:
        return _error(f"doctor: expected MODULE:FACTORY, got {args.factory!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        return _error(f"doctor: cannot load {args.factory!r}: {exc}")
    made = factory()
    if isinstance(made, dict):
        kwargs = dict(made)
    elif isinstance(made, tuple) and len(made) == 3:
        kwargs = dict(zip(("model", "batch", "loss_fn"), made, strict=True))
    else:
        return _error(
            f"doctor: {args.factory} must return (model, batch, loss_fn) or a dict of "
            f"diagnose() arguments, got {type(made).__name__}"
        )
    diagnosis = diagnose(**kwargs, steps=args.steps, seed=args.seed)
    print(diagnosis)
    return 0 if diagnosis.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``torchkata`` and ``python -m torchkata``; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "ls":
        return _cmd_ls()
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "doctor":
        return _cmd_doctor(args)
    return _cmd_tour(args)


if __name__ == "__main__":
    sys.exit(main())
