"""One run of a recipe: its folder, seed, device, metrics, figures and checkpoints.

A recipe receives a :class:`Run` and uses it for the chores only; the training loop
stays in the recipe. A run folder looks like::

    runs/<recipe>-<timestamp>/
        config.json      resolved config, seed, device, versions, command
        metrics.jsonl    one JSON object per ``run.log`` call, streamed
        metrics.json     final summary: headline numbers and last values
        report.md        what was run, headline numbers against references, figures
        *.png            figures
        checkpoint/      NNNNNN.safetensors + NNNNNN.json, and latest.json naming the pair

Checkpoints hold tensors in safetensors and everything else in JSON, so loading never
unpickles anything. Each file is written to a temporary name and renamed, and
``latest.json`` is replaced last, so a process killed at any moment leaves the previous
checkpoint loadable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "Headline",
    "Run",
    "atomic_write_bytes",
    "bf16_autocast",
    "load_state",
    "lr_factor",
    "resolve_device",
    "save_state",
    "seed_everything",
]

T = TypeVar("T")

DEVICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) random number generators.

    Args:
        seed: a non-negative integer.

    Examples:
        >>> seed_everything(0); a = torch.rand(2)
        >>> seed_everything(0); bool(torch.equal(a, torch.rand(2)))
        True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """Turn ``'auto' | 'cpu' | 'cuda' | 'mps'`` into a :class:`torch.device`.

    ``'auto'`` picks CUDA, then MPS, then CPU. Asking for a device that is not
    available is an error rather than a silent fallback.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch.cuda.is_available() is False")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            "device: 'mps' was asked for but torch.backends.mps.is_available() is False"
        )
    return torch.device(device)


# --------------------------------------------------------------------------- state files


def lr_factor(step: int, total: int, warmup: int = 0, min_ratio: float = 0.0) -> float:
    """The learning-rate multiplier at ``step`` (from 0) of ``total``: linear warm-up over
    ``warmup`` steps, then a cosine from 1 down to ``min_ratio``.

    Examples:
        >>> [round(lr_factor(s, 4, min_ratio=0.5), 3) for s in range(4)]
        [1.0, 0.927, 0.75, 0.573]
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def bf16_autocast(device: torch.device, enabled: bool = True) -> Callable[[], Any]:
    """A factory of bfloat16 autocast contexts where bf16 pays, else of null contexts.

    It pays on CUDA and on CPUs with AVX512-BF16/AMX matmuls (1.5x on the GPT of
    ``benchmarks/bench_transformer.py``, 2.2x on the Relation Network of
    ``benchmarks/bench_relational.py``); elsewhere bf16 is emulated and slower.

    Examples:
        >>> with bf16_autocast(torch.device("cpu"), enabled=False)():
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    cpu_bf16 = device.type == "cpu" and getattr(torch.cpu, "_is_avx512_bf16_supported", bool)()
    if enabled and (device.type == "cuda" or cpu_bf16):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file
    is renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace every tensor in a nested structure by a reference into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "tensor"
        # safetensors refuses shared or non-contiguous storage: store an owned copy.
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj):
            return {
                k: _flatten(v, tensors, f"{prefix}.{k}" if prefix else k) for k, v in obj.items()
            }
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"state: dict keys must be str or int, got {type(k).__name__}")
            items.append([k, _flatten(v, tensors, f"{prefix}.{k}" if prefix else str(k))])
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(
        f"state: cannot store a {type(obj).__name__} at {prefix!r}; "
        "expected tensors, dicts, lists, tuples, str, int, float, bool or None"
    )


def _unflatten(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__dict__"}:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_state(state: Mapping[str, Any], folder: Path, name: str) -> None:
    """Save a nested state (state_dicts, RNG states, numbers) as safetensors + JSON.

    Writes ``folder/name.safetensors`` (the tensors) and ``folder/name.json`` (the
    structure, with references to the tensors), each atomically.
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(dict(state), tensors, "")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / f"{name}.safetensors", save(tensors))
    atomic_write_bytes(folder / f"{name}.json", json.dumps(skeleton).encode())


def load_state(folder: Path, name: str) -> dict[str, Any]:
    """Load what :func:`save_state` wrote. Never unpickles: safetensors and JSON only."""
    from safetensors.torch import load

    tensors = load((folder / f"{name}.safetensors").read_bytes())
    skeleton = json.loads((folder / f"{name}.json").read_text())
    return _unflatten(skeleton, tensors)


# --------------------------------------------------------------------------- the run


@dataclasses.dataclass
class Headline:
    """A headline number of a run, with the reference it is compared to (if any)."""

    name: str
    value: float
    reference: float | None = None
    source: str = ""  # where the reference comes from: a paper, a peer library
    unit: str = ""
    higher_is_better: bool = True


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value


def _env_rank() -> int:
    """This process's rank from torchrun's environment; 0 outside torchrun."""
    raw = os.environ.get("RANK", "0") or "0"
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable RANK: expected an integer, got {raw!r}") from None


def _versions() -> dict[str, str]:
    import matplotlib
    import sklearn

    from torchkata import __version__

    return {
        "torchkata": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


class Run:
    """The chores of one recipe run: folder, seed, device, logging, figures, checkpoints.

    Args:
        recipe: the recipe's registered name, e.g. ``"norm"``.
        config: the recipe's resolved config dataclass.
        seed: the run's seed; :func:`seed_everything` is called with it. Default: ``0``.
        device: ``'auto' | 'cpu' | 'cuda' | 'mps'``. Default: ``'auto'``.
        out: the parent folder of run folders. Default: ``'runs'``.
        resume: an existing run folder to continue in (its config is kept).
            Default: ``None`` (a new folder ``<out>/<recipe>-<timestamp>``).
        preset: the preset the config came from, recorded for the report.
        progress: show progress bars when stdout is a terminal. Default: ``True``.
        threads: CPU threads for torch (``torch.set_num_threads``), or ``None`` to leave
            torch's setting. Default: ``None``.
        command: the command line that reproduces the run, recorded for the report.

    Under ``torchrun`` every process makes a ``Run``; only rank 0 (``RANK`` in the
    environment, :attr:`is_main`) creates the folder and writes to it, shows progress and
    prints; the others keep the run's step count, read checkpoints, and write nothing.
    Pass every rank the same ``resume`` folder (``torchkata run --nproc`` does) so that
    they can all read the checkpoints.

    Examples:
        >>> import dataclasses, tempfile
        >>> @dataclasses.dataclass
        ... class Config:
        ...     epochs: int = 1
        >>> run = Run("demo", Config(), seed=0, device="cpu", out=tempfile.mkdtemp())
        >>> run.log({"loss": 0.5})
        >>> run.finish()
        >>> sorted(p.name for p in run.dir.iterdir())
        ['config.json', 'metrics.json', 'metrics.jsonl', 'report.md']
    """

    def __init__(
        self,
        recipe: str,
        config: Any,
        *,
        seed: int = 0,
        device: str = "auto",
        out: str | Path = "runs",
        resume: str | Path | None = None,
        preset: str = "",
        progress: bool = True,
        threads: int | None = None,
        command: str = "",
    ) -> None:
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"config: expected a dataclass instance, got {type(config).__name__}")
        self.recipe = recipe
        self.config = config
        self.seed = seed
        self.preset = preset
        self.device = resolve_device(device)
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads: expected a positive int, got {threads!r}")
            torch.set_num_threads(threads)
        self.show_progress = progress and sys.stdout.isatty()
        self.step = 0  # number of run.log calls so far; checkpoints record it
        self.headlines: list[Headline] = []
        self.notes: list[str] = []
        self.figures: list[str] = []
        self.resumed = resume is not None
        self.is_main = _env_rank() == 0  # the process that writes (rank 0 under torchrun)
        self.show_progress = self.show_progress and self.is_main
        if resume is not None:
            self.dir = Path(resume)
            if not (self.dir / "config.json").is_file():
                raise ValueError(f"resume: {self.dir} is not a run folder (no config.json)")
        else:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            self.dir = Path(out) / f"{recipe}-{stamp}"
        if resume is None and self.is_main:
            self.dir.mkdir(parents=True, exist_ok=False)
            record = {
                "recipe": recipe,
                "preset": preset,
                "seed": seed,
                "device": device,
                "resolved_device": str(self.device),
                "threads": torch.get_num_threads(),
                "config": _to_jsonable(dataclasses.asdict(config)),
                "versions": _versions(),
                "command": command,
                "started": _dt.datetime.now().isoformat(timespec="seconds"),
            }
            atomic_write_bytes(self.dir / "config.json", json.dumps(record, indent=2).encode())
        self._metrics_path = self.dir / "metrics.jsonl"
        self._last_progress_line = 0.0
        seed_everything(seed)

    # ---------------------------------------------------------------- metrics and notes

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Append one record of metrics (numbers, strings, small lists) to ``metrics.jsonl``."""
        self.step += 1
        if not self.is_main:
            return
        record = {"step": self.step, "time": round(time.time(), 3), **_to_jsonable(metrics)}
        with open(self._metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        """All records logged so far, in order (read back from ``metrics.jsonl``)."""
        if not self._metrics_path.exists():
            return []
        return [json.loads(line) for line in self._metrics_path.read_text().splitlines() if line]

    def headline(
        self,
        name: str,
        value: float,
        *,
        reference: float | None = None,
        source: str = "",
        unit: str = "",
        higher_is_better: bool = True,
    ) -> None:
        """Record a headline number for the report, with an optional reference to compare."""
        self.headlines.append(
            Headline(name, float(value), reference, source, unit, higher_is_better)
        )

    def note(self, markdown: str) -> None:
        """Add a paragraph of Markdown to the report (what the numbers show)."""
        self.notes.append(markdown.strip())

    def figure(self, name: str, fig: Any) -> Path:
        """Save a matplotlib figure as ``<name>.png`` in the run folder and close it."""
        import matplotlib.pyplot as plt

        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"name: expected letters, digits, '-' or '_', got {name!r}")
        path = self.dir / f"{name}.png"
        if self.is_main:
            fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        if name not in self.figures:
            self.figures.append(name)
        return path

    def info(self, message: str) -> None:
        """A line for the person watching: to stderr, so stdout stays clean for data."""
        if not self.is_main:
            return
        sys.stderr.write(f"[{self.recipe}] {message}\n")
        sys.stderr.flush()

    # ---------------------------------------------------------------- progress

    def progress(
        self, iterable: Iterable[T], total: int | None = None, desc: str = ""
    ) -> Iterator[T]:
        """Iterate with a progress bar on a terminal, or plain log lines every 10 s otherwise."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        if self.show_progress:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            columns = (
                TextColumn(f"[bold]{self.recipe}[/] {desc}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, transient=True) as bar:
                task = bar.add_task(desc, total=total)
                for item in iterable:
                    yield item
                    bar.advance(task)
            return
        start = time.monotonic()
        for done, item in enumerate(iterable, start=1):
            yield item
            now = time.monotonic()
            if now - self._last_progress_line >= 10.0:
                self._last_progress_line = now
                of = f"/{total}" if total is not None else ""
                self.info(f"{desc} {done}{of} ({now - start:.0f} s)")

    # ---------------------------------------------------------------- checkpoints

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoint"

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Save ``state`` (nested dicts of tensors, numbers, strings) as the latest checkpoint.

        The run's own bookkeeping (its log step, headlines, notes, figures) is saved with it,
        so that :meth:`load_checkpoint` can put the run back where it was. Under torchrun
        every rank calls it: rank 0 writes, then all meet at a barrier, so no rank goes on
        to read a checkpoint that is not complete.
        """
        if self.is_main:
            self._write_checkpoint(state)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def _write_checkpoint(self, state: Mapping[str, Any]) -> None:
        folder = self.checkpoint_dir
        folder.mkdir(exist_ok=True)
        previous = self._latest_name()
        name = f"{(int(previous) + 1) if previous else 1:06d}"
        bookkeeping = {
            "step": self.step,
            "headlines": [dataclasses.asdict(h) for h in self.headlines],
            "notes": list(self.notes),
            "figures": list(self.figures),
        }
        save_state({"state": dict(state), "run": bookkeeping}, folder, name)
        atomic_write_bytes(folder / "latest.json", json.dumps({"name": name}).encode())
        for path in folder.iterdir():  # older pairs and leftovers of killed writes
            if path.name != "latest.json" and not path.name.startswith(name + "."):
                path.unlink(missing_ok=True)

    def _latest_name(self) -> str | None:
        latest = self.checkpoint_dir / "latest.json"
        if not latest.is_file():
            return None
        return str(json.loads(latest.read_text())["name"])

    def load_checkpoint(self) -> dict[str, Any] | None:
        """Return the state of the latest checkpoint and restore the run's bookkeeping.

        Records of ``metrics.jsonl`` logged after that checkpoint are dropped, since the
        resumed run will log them again. Returns ``None`` when there is no checkpoint.
        """
        name = self._latest_name()
        if name is None:
            return None
        saved = load_state(self.checkpoint_dir, name)
        book = saved["run"]
        self.step = int(book["step"])
        self.headlines = [Headline(**h) for h in book["headlines"]]
        self.notes = list(book["notes"])
        self.figures = list(book["figures"])
        if not self.is_main:
            return saved["state"]
        kept = [r for r in self.metrics() if r["step"] <= self.step]
        atomic_write_bytes(self._metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())
        return saved["state"]

    # ---------------------------------------------------------------- the end

    def finish(self, **summary: Any) -> None:
        """Write ``metrics.json`` (headlines, summary values) and ``report.md``."""
        from torchkata.report import write_run_report

        if not self.is_main:
            return
        record = {
            "recipe": self.recipe,
            "headlines": [dataclasses.asdict(h) for h in self.headlines],
            "summary": _to_jsonable(summary),
            "figures": self.figures,
            "notes": self.notes,
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        }
        atomic_write_bytes(self.dir / "metrics.json", json.dumps(record, indent=2).encode())
        write_run_report(self.dir)
