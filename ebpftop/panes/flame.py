"""A flame graph drawn in the terminal, as an icicle: the root (every
sample) on the first line, each process name below it, then each frame
below its caller, each as wide as its share of the samples; siblings are
placed the most samples first, and a frame narrower than one cell is not
drawn (its samples still widen its caller).  User frames are warm, kernel
frames blue, process names green, and the marks that say why a stack is
missing or cut grey, as flamegraph.pl colours them (but its kernel orange).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text

from ebpftop.sets.profile import shown_as
from ebpftop.text import visible

USER, KERNEL, PROCESS, MARK, ROOT = "user", "kernel", "process", "mark", "root"


class Node:
    __slots__ = ("name", "kind", "samples", "children")

    def __init__(self, name: str, kind: str):
        self.name, self.kind, self.samples = name, kind, 0
        self.children: dict[tuple[str, str], Node] = {}

    def child(self, name: str, kind: str) -> Node:
        key = (name, kind)
        node = self.children.get(key)
        if node is None:
            node = self.children[key] = Node(name, kind)
        return node

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.children.values()), default=0)


def frame_kind(name: str, kernel: bool) -> str:
    if name.startswith("[") and not name.startswith("[unknown"):
        return MARK  # [stack lost: ...], [cut: ...], [user stack unavailable], [exited], [other stacks]
    return KERNEL if kernel else USER


def tree(rows: Iterable, root_name: str = "all") -> Node:
    """ProfileStack rows as one tree: root, process name, frames root first."""
    root = Node(root_name, ROOT)
    for r in rows:
        node = root
        node.samples += r.samples
        node = node.child(r.comm, PROCESS)
        node.samples += r.samples
        for name, kernel in r.frames:
            name = shown_as(name)
            node = node.child(name, frame_kind(name, kernel))
            node.samples += r.samples
    return root


def _colour(node: Node) -> Style:
    if node.kind == ROOT:
        return Style(color="black", bgcolor="rgb(200,200,200)")
    if node.kind == MARK:
        return Style(color="black", bgcolor="rgb(160,160,160)")
    h = zlib.crc32(node.name.encode("utf-8", "replace"))  # the same function, the same colour
    v1, v2 = (h & 0xFF) / 255, ((h >> 8) & 0xFF) / 255
    if node.kind == PROCESS:
        return Style(color="black", bgcolor=f"rgb({int(90 + 60 * v1)},{int(180 + 50 * v2)},{int(90 + 40 * v1)})")
    if node.kind == KERNEL:
        return Style(color="black", bgcolor=f"rgb({int(90 + 60 * v1)},{int(150 + 60 * v2)},{int(220 + 35 * v1)})")
    return Style(color="black", bgcolor=f"rgb({int(205 + 50 * v2)},{int(80 + 150 * v1)},{int(55 * v2)})")


def icicle(root: Node, width: int) -> list[Text]:
    """One Text of `width` cells per depth."""
    if width <= 0 or root.samples <= 0:
        return []
    levels: list[list[tuple[int, int, Node]]] = []

    def place(node: Node, depth: int, x0: float, x1: float) -> None:
        start, end = round(x0), round(x1)
        if end - start < 1:
            return
        while len(levels) <= depth:
            levels.append([])
        levels[depth].append((start, end, node))
        x = x0
        for c in sorted(node.children.values(), key=lambda c: (-c.samples, c.name)):
            w = (x1 - x0) * c.samples / node.samples
            place(c, depth + 1, x, x + w)
            x += w

    place(root, 0, 0.0, float(width))
    lines = []
    for segments in levels:
        line = Text(no_wrap=True, overflow="crop")
        at = 0
        for start, end, node in segments:  # placed left to right
            if start > at:
                line.append(" " * (start - at))
            cells = end - start
            label = visible(node.name)
            if node.kind == ROOT:
                label = f"{label} ({node.samples:,} samples)"
            if cells == 1:
                text = " "
            elif cell_len(label) <= cells - 1 or cells < 3:
                text = set_cell_size(label, cells - 1) + "▏"
            else:
                text = set_cell_size(label, cells - 2) + "…▏"
            line.append(text, style=_colour(node))
            at = end
        if at < width:
            line.append(" " * (width - at))
        lines.append(line)
    return lines


def legend() -> Text:
    out = Text()
    for name, kind in (("user code", USER), ("kernel", KERNEL), ("process", PROCESS), ("gone, lost or cut", MARK)):
        out.append(f" {name} ", style=_colour(Node("a", kind)))
        out.append(" ")
    return out
