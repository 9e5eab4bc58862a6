"""The loader: compiles the probe sets' C with BCC, loads it, and is what the
collectors read the maps through (sets/base.py: Kernel).  The only module of
ebpftop that imports ``bcc``.

Maps are drained in bulk (mapbatch.py) where the kernel allows, else
through BCC; ring buffers share BCC's one poller, but for cgroups.c's, which
a thread of its own reads (containers are named the moment they are made).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import tempfile
import threading
import time

from ebpftop.sources import mapbatch, program
from ebpftop.sources.bpf_syscall import BPF_PROG_TYPE_CGROUP_SKB, BPF_PROG_TYPE_PERF_EVENT


@contextlib.contextmanager
def captured_fd2():
    """clang and libbpf write their diagnostics to fd 2: keep them off the
    screen (the TUI draws there), in a file the caller can read."""
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def error_text(e: Exception) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else program.first_line(str(e))


def _drain_with_bcc(table):
    """Every (key, value) of a hash map, each deleted as it is read, so
    nothing is counted twice and nothing between read and delete is lost."""
    try:
        return list(table.items_lookup_and_delete_batch())
    except Exception:  # noqa: BLE001 - kernels before 5.6 lack the batch ops
        items = []
        for k, _v in list(table.items()):
            try:
                items.append((k, table[k]))
                del table[k]
            except KeyError:
                pass
        return items


def _fields(obj, names):
    if names == ("value",):
        return (int(getattr(obj, "value", obj)),)
    return tuple(getattr(obj, f) for f in names)


def kernel_symbols_readable(path: str = "/proc/kallsyms") -> bool:
    """False when the kernel hides its symbols' addresses from this process
    (kernel.kptr_restrict, and no CAP_SYSLOG, as under the systemd unit
    without it): each reads as 0.  BCC then reads the whole file again for
    every kernel address it is asked to name: two 1 s intervals under a
    getppid() loop took 40.0 s instead of 7.0."""
    try:
        with open(path, "rb") as f:
            for line in itertools.islice(f, 16):
                if int(line.split(None, 1)[0], 16):
                    return True
    except (OSError, ValueError, IndexError):
        pass
    return False


class Symbolizer:
    """Code addresses to function names, with BCC's symbol caches (the ELF
    and /proc/PID/maps reading is BCC's), bounded: at most MAX_PROCS
    processes' caches, the least recently used evicted, and MAX_FRAMES
    resolved addresses.  A process is known by its pid and its start time
    (a pid used again is another program).  A process that exited before
    its stacks were read keeps its addresses, marked [exited]."""

    MAX_PROCS = 64
    MAX_FRAMES = 200_000
    RECHECK_S = 1.0  # how long a pid's start time is taken as known

    def __init__(self):
        from collections import OrderedDict

        from bcc import SymbolCache

        self._cache_of = SymbolCache
        self.procs: OrderedDict = OrderedDict()
        self.frames: OrderedDict = OrderedDict()
        self._kernel = SymbolCache(-1)
        self.kernel_symbols = kernel_symbols_readable()
        self._started: dict[int, tuple[float, int | None]] = {}  # pid -> (checked at, its start time; None: gone)

    def _start_time(self, tgid: int) -> int | None:
        now = time.monotonic()
        seen = self._started.get(tgid)
        if seen is not None and now - seen[0] < self.RECHECK_S:
            return seen[1]
        try:
            with open(f"/proc/{tgid}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            # a zombie's memory map is gone: its addresses cannot be named any more than an exited one's
            started = None if fields[0] in (b"Z", b"X") else int(fields[19])  # field 22: its start time
        except (OSError, ValueError, IndexError):
            started = None
        if len(self._started) > 4 * self.MAX_PROCS:
            self._started.clear()
        self._started[tgid] = (now, started)
        return started

    def _proc(self, key):
        c = self.procs.get(key)
        if c is not None:
            self.procs.move_to_end(key)
            return c
        c = self.procs[key] = self._cache_of(key[0])
        if len(self.procs) > self.MAX_PROCS:
            self.procs.popitem(last=False)  # BCC frees it with the object
        return c

    def _remember(self, key, name: str) -> str:
        self.frames[key] = name
        if len(self.frames) > self.MAX_FRAMES:
            self.frames.popitem(last=False)
        return name

    def user(self, tgid: int, addr: int) -> str:
        started = self._start_time(tgid)
        if started is None:
            return f"[exited] {addr:#x}"
        key = (tgid, started, addr)
        name = self.frames.get(key)
        if name is not None:
            return name
        sym, _offset, module = self._proc((tgid, started)).resolve(addr, True)
        if sym:
            name = sym.decode(errors="replace")
        elif module:  # a stripped binary: its functions cannot be told apart, its module can
            name = f"[unknown in {os.path.basename(module.decode(errors='replace'))}]"
        else:  # no module maps it: JIT code, or (without frame pointers) not a return address at all
            name = "[unknown]"
        return self._remember(key, name)

    def kernel(self, addr: int) -> str:
        if not self.kernel_symbols:
            return "[kernel]"
        name = self.frames.get((-1, 0, addr))
        if name is None:
            sym, _offset, _module = self._kernel.resolve(addr, False)
            name = self._remember((-1, 0, addr), sym.decode(errors="replace") if sym else "[unknown]")
        return name


class Kernel:
    """One loaded BCC module and its maps."""

    PROG_TYPES = {"cgroup_skb": BPF_PROG_TYPE_CGROUP_SKB, "perf_event": BPF_PROG_TYPE_PERF_EVENT}

    def __init__(self, bpf, caps):
        self.bpf = bpf
        self.caps = caps
        self._drainers: dict[str, mapbatch.BatchDrainer | None] = {}  # None: BCC reads that map
        self._rings = False  # some ring buffer is open in BCC's poller
        self._thread_rings: list = []  # (stop event, thread, ring, callback) read by threads of their own

    @classmethod
    def load(cls, text: str, cflags: list[str], caps) -> Kernel:
        """Compile and load; RuntimeError with the first error line."""
        from bcc import BPF  # the only import of bcc in ebpftop

        with captured_fd2() as log:
            try:
                return cls(BPF(text=text.encode(), cflags=cflags), caps)
            except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
                log.seek(0)
                detail = log.read().decode("utf-8", "replace")
                raise RuntimeError(program.first_line(detail if "error" in detail else e)) from None

    # -- maps -------------------------------------------------------------

    def table(self, name: str):
        return self.bpf[name.encode()]

    def drain(self, name: str, key_fields: tuple[str, ...] | None, value_fields: tuple[str, ...],
              delete: bool = True) -> list:
        table = self.table(name)
        drainer = self._drainers.get(name, False)
        if drainer is False and not self.caps.map_batch:
            drainer = self._drainers[name] = None
        if drainer is False:
            try:
                drainer = mapbatch.BatchDrainer(table.map_fd, table.Key, table.Leaf, int(table.max_entries))
            except (TypeError, AttributeError):
                drainer = None
            self._drainers[name] = drainer
        if drainer is not None:
            try:
                return drainer.drain(key_fields, value_fields, delete)
            except OSError:  # Linux < 5.6: no batch command
                self._drainers[name] = None
        items = _drain_with_bcc(table) if delete else list(table.items())
        if key_fields is None:
            return [_fields(v, value_fields) for _k, v in items]
        return [(_fields(k, key_fields), _fields(v, value_fields)) for k, v in items]

    def drain_percpu(self, name: str, key_fields: tuple[str, ...], value_fields: tuple[str, ...]) -> list:
        """A per-CPU hash map's entries, each deleted as it is read, the
        CPUs' copies of each value summed (an array element by element).
        Never through BCC's batch read: on per-CPU maps it deletes the
        entries and then fails to decode them (BCC 0.31: "incompatible
        types"), so everything read is lost; here one raw
        BPF_MAP_LOOKUP_AND_DELETE_BATCH, each CPU's copy decoded by BCC's
        type of one value."""
        table = self.table(name)
        one = getattr(table, "sLeaf", table.Leaf)  # BCC's type of one CPU's value
        cpus = int(getattr(table, "total_cpu", 0)) or len(table.Leaf())
        stride = (ctypes.sizeof(one) + 7) // 8 * 8  # the kernel gives each CPU's copy 8-byte aligned
        items = None
        drainer = self._drainers.get(name, False)
        if drainer is False:
            drainer = None
            if self.caps.map_batch:
                class Values(ctypes.Structure):  # every CPU's copy of one value, as bytes
                    _fields_ = [("raw", ctypes.c_ubyte * (stride * cpus))]
                try:
                    drainer = mapbatch.BatchDrainer(table.map_fd, table.Key, Values, int(table.max_entries))
                except (TypeError, AttributeError):
                    drainer = None
            self._drainers[name] = drainer
        if drainer is not None:
            try:
                items = [(k, [one.from_buffer_copy(raw, c * stride) for c in range(cpus)])
                         for k, (raw,) in drainer.drain(key_fields, ("raw",))]
            except OSError:  # Linux < 5.6: no batch command
                self._drainers[name] = None
        if items is None:  # one key at a time: what is added between a read and its delete is lost
            items = []
            for k in list(table.keys()):
                try:
                    items.append((_fields(k, key_fields), list(table[k])))
                    del table[k]
                except KeyError:
                    pass
        out = []
        for k, per_cpu in items:
            sums: list = [None] * len(value_fields)
            for v in per_cpu:
                for i, f in enumerate(value_fields):
                    x = getattr(v, f)
                    if isinstance(x, int):
                        sums[i] = x if sums[i] is None else sums[i] + x
                    else:  # an array: summed element by element
                        sums[i] = list(x) if sums[i] is None else [a + b for a, b in zip(sums[i], x)]
            out.append((k, tuple(sums)))
        return out

    def reader(self, name: str) -> mapbatch.ElementReader:
        table = self.table(name)
        return mapbatch.ElementReader(table.map_fd, ctypes.sizeof(table.Key), ctypes.sizeof(table.Leaf))

    def leaf_size(self, name: str) -> int:
        return ctypes.sizeof(self.table(name).Leaf)

    def symbolizer(self) -> Symbolizer:
        return Symbolizer()

    def format_of(self, tracepoint: str) -> str:
        return program.format_text(program.tracefs_root(), tracepoint)

    # -- ring buffers -------------------------------------------------------

    def open_ring(self, name: str, handler) -> None:
        """handler(data pointer, size) for each event, when consume_rings() reads them."""
        def callback(_ctx, data, size):
            handler(data, size)

        self.table(name).open_ring_buffer(callback)
        self._rings = True

    def consume_rings(self) -> None:
        if self._rings:
            self.bpf.ring_buffer_consume()

    def read_ring_in_thread(self, name: str, handler, thread_name: str) -> bool:
        """A thread of its own blocked on this ring buffer alone, handler(data,
        size) called on it as events come; False if it cannot be opened."""
        from bcc.libbcc import _RINGBUF_CB_TYPE, lib

        def on_event(_ctx, data, size) -> int:
            handler(data, size)
            return 0

        callback = _RINGBUF_CB_TYPE(on_event)  # kept: the C side holds only a pointer
        ring = lib.bpf_new_ringbuf(self.table(name).map_fd, callback, None)
        if not ring:
            return False
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                lib.bpf_poll_ringbuf(ring, 200)  # wakes on an event, or to look at the stop flag

        thread = threading.Thread(target=loop, name=thread_name, daemon=True)
        self._thread_rings.append((stop, thread, ring, callback))
        thread.start()
        return True

    # -- programs ---------------------------------------------------------

    def program_fds(self) -> dict[str, int]:
        """Each loaded program's name and fd."""
        return {name.decode(): fn.fd for name, fn in self.bpf.funcs.items()}

    def load_func(self, name: str, kind: str) -> int:
        """A program BCC did not attach on load, loaded as kind (cgroup_skb, perf_event): its fd."""
        with captured_fd2():
            return self.bpf.load_func(name.encode(), self.PROG_TYPES[kind]).fd

    def attached_tracepoints(self) -> list[str]:
        return sorted(k.decode() for k in self.bpf.tracepoint_fds)

    def attached_raw_tracepoints(self) -> list[str]:
        return sorted(k.decode() for k in self.bpf.raw_tracepoint_fds)

    def set_tracepoint(self, tp: str, prog: str, on: bool) -> None:
        with captured_fd2():
            if on:
                self.bpf.attach_tracepoint(tp=tp.encode(), fn_name=prog.encode())
            else:
                self.bpf.detach_tracepoint(tp.encode())

    def set_raw_tracepoint(self, event: str, prog: str, on: bool) -> None:
        with captured_fd2():
            if on:
                self.bpf.attach_raw_tracepoint(tp=event.encode(), fn_name=prog.encode())
            else:
                self.bpf.detach_raw_tracepoint(event.encode())

    # -- the end ------------------------------------------------------------

    def close(self) -> None:
        """Stop the ring threads and detach everything: every classic
        tracepoint program in parallel (each detach waits for the kernel's
        RCU grace periods, about 70 ms here; one after the other, as BCC's
        cleanup does them, quitting took 1.5 s; together, about half)."""
        from concurrent.futures import ThreadPoolExecutor

        from bcc.libbcc import lib

        for stop, thread, ring, _callback in self._thread_rings:
            stop.set()
            thread.join()
            lib.bpf_free_ringbuf(ring)
        self._thread_rings = []
        tracepoints = list(self.bpf.tracepoint_fds)
        if tracepoints:
            with ThreadPoolExecutor(max_workers=len(tracepoints), thread_name_prefix="ebpftop-detach") as pool:
                for done in [pool.submit(self.bpf.detach_tracepoint, tp) for tp in tracepoints]:
                    with contextlib.suppress(Exception):  # BCC's cleanup retries what is left
                        done.result()
        self.bpf.cleanup()
