"""mapbatch.Codec: BCC's ctypes layouts as struct formats (padding, packed
types, arrays), and the fields a collector asks for."""

import ctypes
import struct

import pytest

from ebpftop.sources.mapbatch import Codec


class LatencyKey(ctypes.Structure):  # as BCC builds struct latency_key
    _fields_ = [("cgroup", ctypes.c_ulong), ("comm", ctypes.c_char * 16), ("tgid", ctypes.c_uint),
                ("slot", ctypes.c_ushort), ("op", ctypes.c_ushort)]


class ThreadCount(ctypes.Structure):  # tail padding: 8 + 8 + 4 + 16 = 36, sized 40
    _fields_ = [("count", ctypes.c_ulong), ("cgroup", ctypes.c_ulong), ("tgid", ctypes.c_uint),
                ("comm", ctypes.c_char * 16)]


class Packed(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("a", ctypes.c_ubyte), ("b", ctypes.c_uint), ("addr", ctypes.c_ubyte * 4), ("s", ctypes.c_int)]


def test_a_struct_decodes_field_by_field_with_its_padding():
    codec = Codec(ThreadCount)
    assert codec.size == ctypes.sizeof(ThreadCount) == 40
    v = ThreadCount(count=7, cgroup=1 << 40, tgid=99, comm=b"dd")
    [row] = codec.decode(bytes(v), 1)
    assert row == (7, 1 << 40, 99, b"dd" + b"\0" * 14)
    assert codec.names == ("count", "cgroup", "tgid", "comm")


def test_a_packed_struct_and_signed_fields():
    codec = Codec(Packed)
    v = Packed(a=1, b=0xDEADBEEF, s=-5)
    v.addr[:] = [127, 0, 0, 1]
    assert codec.decode(bytes(v), 1) == [(1, 0xDEADBEEF, bytes([127, 0, 0, 1]), -5)]


def test_many_entries_and_only_the_count_given():
    codec = Codec(LatencyKey)
    keys = b"".join(bytes(LatencyKey(cgroup=i, comm=b"c%d" % i, tgid=i, slot=i % 64, op=i % 2)) for i in range(5))
    rows = codec.decode(keys + b"\xff" * 64, 3)  # the buffer is larger than what the kernel filled
    assert [r[0] for r in rows] == [0, 1, 2]


def test_picking_fields_in_another_order():
    codec = Codec(LatencyKey)
    raw = bytes(LatencyKey(cgroup=5, comm=b"x", tgid=6, slot=7, op=1))
    assert codec.decode(raw, 1, codec.picker(("op", "tgid"))) == [(1, 6)]
    assert codec.decode(raw, 1, codec.picker(("slot",))) == [(7,)]
    assert codec.picker(codec.names) is None  # the identity: no per-entry call
    with pytest.raises(KeyError, match="nope"):
        codec.picker(("nope",))


def test_a_scalar_is_one_field_named_value():
    codec = Codec(ctypes.c_ulonglong)
    assert codec.names == ("value",)
    assert codec.decode(struct.pack("=QQ", 3, 4), 2) == [(3,), (4,)]


def test_what_cannot_be_laid_out_is_refused():
    class Bits(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint, 3), ("b", ctypes.c_uint, 5)]

    with pytest.raises(TypeError):
        Codec(Bits)
    with pytest.raises(TypeError):
        Codec(ctypes.c_char * 8)
