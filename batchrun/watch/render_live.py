"""Live progress for terminals, drawn with rich: pool nodes, a task progress bar, elapsed time and ETA."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from batchrun.watch.progress import ProgressView, format_duration


def progress_renderable(view: ProgressView) -> RenderableType:
    counts = view.counts
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    if view.pool is not None:
        if not view.pool.exists:
            pool_text = Text("not found", style="red")
        elif view.nodes is not None:
            pool_text = Text.assemble(
                (f"{view.nodes.ready} ready", "green"),
                "  ",
                (f"{view.nodes.starting} starting", "yellow"),
                "  ",
                (f"{view.nodes.failed} failed", "red" if view.nodes.failed else ""),
            )
        else:
            pool_text = Text(f"{view.pool.current_nodes}/{view.pool.target_nodes} nodes")
        if view.pool.allocation_state and view.pool.allocation_state != "steady":
            pool_text.append(f"  ({view.pool.allocation_state})", style="dim")
        if view.pool.resize_errors:
            pool_text.append(f"  resize errors: {view.pool.resize_errors[0].code}", style="red")
        grid.add_row(f"Pool {view.pool.id}", pool_text)
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(counts.total, 1), completed=counts.completed, width=40),
        Text(f"{view.fraction:>4.0%}  {counts.completed}/{counts.total}"),
    )
    grid.add_row(f"Job {view.job.id}", bar)
    grid.add_row(
        "Tasks",
        Text.assemble(
            (f"{counts.active} active", "cyan"),
            "  ",
            (f"{counts.running} running", "yellow"),
            "  ",
            (f"{counts.succeeded} succeeded", "green"),
            "  ",
            (f"{counts.failed} failed", "red" if counts.failed else ""),
        ),
    )
    state = f"   job {view.job.state}" if view.job.state and view.job.state != "active" else ""
    grid.add_row("Elapsed", f"{format_duration(view.elapsed)}   ETA {format_duration(view.eta)}{state}")
    return Group(grid)


class LiveProgressRenderer:
    """Redraws in place on every poll; the last frame stays on screen when closed."""

    def __init__(self, console: Console) -> None:
        self._live = Live(console=console, auto_refresh=False, transient=False)
        self._started = False

    def update(self, view: ProgressView) -> None:
        if not self._started:
            self._live.start()
            self._started = True
        self._live.update(progress_renderable(view), refresh=True)

    def close(self, view: ProgressView | None) -> None:
        if view is not None:
            self.update(view)
        if self._started:
            self._live.stop()
