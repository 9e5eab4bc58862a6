"""Reading a BPF hash map in bulk, decoded at C speed.

BCC's own batch read (items_lookup_and_delete_batch) makes a ctypes object
per key and per value, and every field read from them costs a ctypes
attribute lookup: for 100,000 entries that was most of a poll.  Here one
BPF_MAP_LOOKUP_AND_DELETE_BATCH fills two flat buffers, and struct.iter_unpack
turns them into plain tuples of the fields the caller asks for, by the names
of BCC's ctypes types (which give the layout: offsets, padding and sizes).
Plain tuples, unpacked in a for statement, are four times faster to read
than named ones (measured: 3.7 against 16.3 ms for 25,000 entries).  A char
or byte array comes back as bytes, NULs included (decode_c_string cuts at
the first); a nested struct as its raw bytes.

Where the kernel lacks the batch command (Linux < 5.6), or the map is not a
plain hash map of fixed-size values, the caller falls back to BCC.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from operator import itemgetter

from ebpftop.sources import bpf_syscall

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_LOOKUP_BATCH = 24
BPF_MAP_LOOKUP_AND_DELETE_BATCH = 25
ATTR_SIZE = 64  # the batch command's part of union bpf_attr (56 bytes), rounded up

_INT_CODES = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
              (1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q"}
_SIGNED = {ctypes.c_byte, ctypes.c_short, ctypes.c_int, ctypes.c_long, ctypes.c_longlong}


def _scalar_code(ctype) -> str | None:
    if ctype in _SIGNED or ctype in {ctypes.c_ubyte, ctypes.c_ushort, ctypes.c_uint, ctypes.c_ulong,
                                     ctypes.c_ulonglong, ctypes.c_bool, ctypes.c_char}:
        if ctype is ctypes.c_char:
            return "c"
        return _INT_CODES[(ctypes.sizeof(ctype), ctype in _SIGNED)]
    return None


class Codec:
    """How to decode a ctypes type from bytes: a struct format and the
    names of its fields, in memory order (a scalar is one field, "value")."""

    def __init__(self, ctype):
        self.size = ctypes.sizeof(ctype)
        code = _scalar_code(ctype)
        if code is not None:
            self.format, self.names = "=" + code, ("value",)
            return
        if not (isinstance(ctype, type) and issubclass(ctype, ctypes.Structure)):
            raise TypeError(f"cannot decode {ctype!r} in bulk")
        fmt, names, at = "=", [], 0
        for name, ftype, *bits in ctype._fields_:
            if bits:
                raise TypeError("bit fields are not decoded in bulk")
            offset = getattr(ctype, name).offset  # BCC packs some types: the offsets say where
            if offset < at:
                raise TypeError(f"overlapping fields in {ctype.__name__}")
            fmt += "x" * (offset - at)
            size = ctypes.sizeof(ftype)
            fmt += _scalar_code(ftype) or f"{size}s"
            names.append(name)
            at = offset + size
        fmt += "x" * (self.size - at)
        if struct.calcsize(fmt) != self.size:
            raise TypeError(f"layout of {ctype.__name__} not understood")
        self.format, self.names = fmt, tuple(names)

    def picker(self, wanted: tuple[str, ...]):
        """A function from a decoded tuple to the wanted fields' tuple (None
        when the identity will do).  KeyError names a field it lacks."""
        if wanted == self.names:
            return None
        missing = [w for w in wanted if w not in self.names]
        if missing:
            raise KeyError(f"no field {missing[0]!r} in {self.names}")
        idx = [self.names.index(w) for w in wanted]
        if not idx:
            return lambda _t: ()
        if len(idx) == 1:
            i = idx[0]
            return lambda t: (t[i],)
        return itemgetter(*idx)

    def decode(self, buf, n: int, pick=None) -> list:
        rows = struct.iter_unpack(self.format, memoryview(buf)[: n * self.size])
        return list(rows) if pick is None else [pick(t) for t in rows]


class BatchDrainer:
    """Take every entry out of one hash map: its (key, value) pairs, each
    deleted as it is read (nothing counted twice, nothing between a read and
    its delete lost)."""

    def __init__(self, map_fd: int, key_type, value_type, max_entries: int):
        self.map_fd = map_fd
        self.keys, self.values = Codec(key_type), Codec(value_type)
        self.max_entries = max_entries
        self._key_buf = ctypes.create_string_buffer(self.keys.size * max_entries)
        self._value_buf = ctypes.create_string_buffer(self.values.size * max_entries)
        self._in_batch = ctypes.create_string_buffer(8)
        self._out_batch = ctypes.create_string_buffer(8)

    def drain(self, key_fields: tuple[str, ...] | None, value_fields: tuple[str, ...],
              delete: bool = True) -> list[tuple]:
        """(key, value) pairs, each a tuple of the fields asked for, in that
        order (a scalar's one field is "value"); with key_fields None, the
        values alone (the keys are not decoded).  delete=False reads the
        entries and leaves them (a map of records that live on)."""
        pick_key = None if key_fields is None else self.keys.picker(key_fields)
        pick_value = self.values.picker(value_fields)
        keys: list = []
        values: list = []
        first = True
        while True:
            attr = ctypes.create_string_buffer(ATTR_SIZE)
            struct.pack_into("=QQQQIIQQ", attr, 0,
                             0 if first else ctypes.addressof(self._in_batch),
                             ctypes.addressof(self._out_batch), ctypes.addressof(self._key_buf),
                             ctypes.addressof(self._value_buf), self.max_entries, self.map_fd, 0, 0)
            done = False
            try:
                bpf_syscall._bpf(BPF_MAP_LOOKUP_AND_DELETE_BATCH if delete else BPF_MAP_LOOKUP_BATCH, attr)
            except OSError as e:
                if e.errno != errno.ENOENT:  # ENOENT: the last entries are in this answer
                    if first:
                        raise  # the caller reads the map another way
                    break  # what was taken is returned; the rest waits for the next poll
                done = True
            n = struct.unpack_from("=I", attr, 32)[0]
            if key_fields is not None:
                keys += self.keys.decode(self._key_buf, n, pick_key)
            values += self.values.decode(self._value_buf, n, pick_value)
            if done or n == 0:
                break
            ctypes.memmove(self._in_batch, self._out_batch, 8)
            first = False
        return values if key_fields is None else list(zip(keys, values))


class ElementReader:
    """Single lookups in one map, by bytes, without BCC's per-call ctypes
    objects: the path of a hash, say."""

    def __init__(self, map_fd: int, key_size: int, value_size: int):
        self._key = ctypes.create_string_buffer(key_size)
        self._value = ctypes.create_string_buffer(value_size)
        self._attr = ctypes.create_string_buffer(32)
        struct.pack_into("=IIQQQ", self._attr, 0, map_fd, 0, ctypes.addressof(self._key),
                         ctypes.addressof(self._value), 0)

    def get(self, key: bytes) -> bytes | None:
        self._key.raw = key
        try:
            bpf_syscall._bpf(BPF_MAP_LOOKUP_ELEM, self._attr)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return self._value.raw
