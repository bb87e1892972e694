"""Raw ring access for the bad-input and security tests: libringflow's C API
through ctypes, so a test can write bytes no producer would (malformed
records) and open rings exactly as a C program does."""

from __future__ import annotations

import ctypes
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "build" / "release" / "libringflow.so"

RF_RING_CREATE, RF_RING_GROUP, RF_RING_CONSUMER = 0x1, 0x2, 0x4


class Opts(ctypes.Structure):
    _fields_ = [("capacity", ctypes.c_size_t), ("flags", ctypes.c_uint),
                ("full_policy", ctypes.c_int), ("full_wait_ns", ctypes.c_uint64),
                ("spool_dir", ctypes.c_char_p), ("stall_check_ns", ctypes.c_uint64)]


def lib() -> ctypes.CDLL:
    assert LIB.exists(), "build first: make"
    so = ctypes.CDLL(str(LIB))
    so.rf_ring_errmsg.restype = ctypes.c_char_p
    so.rf_ring_write.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t]
    so.rf_ring_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.POINTER(Opts)]
    so.rf_ring_close.argtypes = [ctypes.c_void_p]
    return so


class RawRing:
    """A producer handle on `name` (created if missing, with `capacity`)."""

    def __init__(self, name: str, spool: Path | None = None, capacity: int = 0,
                 flags: int = RF_RING_CREATE, full_policy: int = 0):
        self.so = lib()
        self.h = ctypes.c_void_p()
        o = Opts(capacity=capacity, flags=flags, full_policy=full_policy, full_wait_ns=1_000_000,
                 spool_dir=str(spool).encode() if spool else None)
        rc = self.so.rf_ring_open(ctypes.byref(self.h), name.encode(), ctypes.byref(o))
        self.rc = rc
        self.error = self.so.rf_ring_errmsg().decode() if rc else ""

    def write(self, type_: int, payload: bytes) -> int:
        return self.so.rf_ring_write(self.h, type_, payload, len(payload))

    def close(self) -> None:
        if self.h:
            self.so.rf_ring_close(self.h)
            self.h = ctypes.c_void_p()
