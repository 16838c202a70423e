"""Live progress of a GRPO stage in the orchestrator's display, the same whether the trainer runs in
process or under ``accelerate launch`` (then rank 0 writes the events to a JSON-lines file that
:func:`rzero_bench.training.launch.run_following` hands over as they arrive).

One line per optimizer step::

    challenger GRPO: step 3/10  reward 0.412 ± 0.210  loss 0.0123  4.1 s/step  ETA 0:29

``reward`` and ``± std`` are TRL's ``reward`` and ``reward_std`` of the latest rollout, ``loss`` its
training loss. Seconds per step are measured between the first and the latest step event (the
first step alone also counts model loading, so it is used only until a second one arrives);
ETA = s/step x steps left. While the challenger's reward samples the solver, a transient bar shows
the questions answered so far with its own ETA.
"""

from __future__ import annotations

import time
from typing import Any


def _clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def step_line(label: str, step: int, total: int, logs: dict[str, Any], seconds_per_step: float | None) -> str:
    """The display line of one step (see the module docstring)."""
    parts = [f"{label}: step {step}/{total}"]
    reward, std, loss = logs.get("reward"), logs.get("reward_std"), logs.get("loss")
    if isinstance(reward, (int, float)):
        parts.append(f"reward {reward:.3f}" + (f" ± {std:.3f}" if isinstance(std, (int, float)) else ""))
    if isinstance(loss, (int, float)):
        parts.append(f"loss {loss:.4g}")
    if seconds_per_step is not None:
        parts.append(f"{seconds_per_step:.1f} s/step")
        if total > step:
            parts.append(f"ETA {_clock(seconds_per_step * (total - step))}")
    return "  ".join(parts)


class TrainDisplay:
    """Receives a GRPO stage's step and sampling events and shows them on ``console``."""

    def __init__(self, console: Any, label: str, *, quiet: bool = False) -> None:
        self.console, self.label, self.quiet = console, label, quiet
        self.started = time.time()
        self.first: tuple[int, float] | None = None  # (step, time) of the first step event
        self.last_step: int | None = None
        self.lines: list[str] = []
        self._bar: Any = None
        self._task: Any = None

    def seconds_per_step(self, step: int, when: float) -> float | None:
        """Between the first step event and this one; from the stage start until a second arrives."""
        if self.first is not None and step > self.first[0]:
            return (when - self.first[1]) / (step - self.first[0])
        return (when - self.started) / step if step > 0 else None

    def step(self, step: int, total: int, logs: dict[str, Any], when: float | None = None) -> None:
        """A trainer log at optimizer step ``step`` of ``total`` (repeats of a step are ignored)."""
        when = time.time() if when is None else when
        if step == self.last_step:
            return
        self.last_step = step
        if self.first is None and step > 0:
            self.first = (step, when)
        sps = self.seconds_per_step(step, when)
        line = step_line(self.label, step, total, logs, sps)
        self.lines.append(line)
        if not self.quiet:
            self.console.print(f"    {line}")

    __call__ = step  # the trainer's progress(step, total, logs) callback

    def sampling(self, done: int, total: int) -> None:
        """The reward's solver sampling: ``done`` of ``total`` questions answered."""
        if self.quiet or total <= 0 or not getattr(self.console, "is_terminal", False):
            return  # a transient bar is for terminals; in a log file it would only leave blank lines
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("      {task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(f"{self.label}: solver samples for the reward", total=total)
        self._bar.update(self._task, completed=done, total=total)
        if done >= total:
            self.close()

    def event(self, event: dict[str, Any]) -> None:
        """One line of a launched stage's progress file."""
        kind = event.get("event")
        if kind == "step":
            self.step(int(event.get("step", 0)), int(event.get("total", 0)), dict(event.get("logs") or {}),
                      when=event.get("time"))
        elif kind == "sampling":
            self.sampling(int(event.get("done", 0)), int(event.get("total", 0)))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None


class BuildDisplay:
    """Progress of building a base model on first use (the micro pretraining: 15-17 min on 2 idle cores).

    A line when a phase starts, then about every ``every`` of its steps a line with the loss and an
    ETA for the phase (seconds per step measured from the phase's first event), so that a log shows
    the run is alive::

        micro:s base: phase1 300/1218  loss 1.234  0.52 s/step  ETA 8:01
    """

    def __init__(self, console: Any, label: str, *, every: float = 0.1, clock: Any = time.monotonic) -> None:
        self.console, self.label, self.every, self.clock = console, label, every, clock
        self.phase: str | None = None
        self.first = (0, 0.0)  # (step, time) of the phase's first event
        self.next_at = 0

    def __call__(self, phase: str, step: int, total: int, loss: float) -> None:
        now = self.clock()
        gap = max(1, int(total * self.every))
        if phase != self.phase:
            self.phase, self.first, self.next_at = phase, (step, now), step + gap
            self.console.print(f"    {self.label}: held-out check (greedy and majority vote per level)" if phase == "eval"
                               else f"    {self.label}: {phase}, {total} steps")
            return
        if phase == "eval" or step <= self.first[0] or (step < self.next_at and step < total):
            return
        self.next_at = step + gap
        sps = (now - self.first[1]) / (step - self.first[0])
        parts = [f"{self.label}: {phase} {step}/{total}"]
        if loss == loss:  # not NaN
            parts.append(f"loss {loss:.3f}")
        parts.append(f"{sps:.2f} s/step")
        if step < total:
            parts.append(f"ETA {_clock(sps * (total - step))}")
        self.console.print("    " + "  ".join(parts))
