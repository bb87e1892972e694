"""One on/off rule for ringflow's switches, the same in Python and in C.

- ringflow._env.flag_value and libringflow's rf_flag_word (ringbuf/rf_env.c,
  called through ctypes) agree on every value: on words, off words, blank,
  anything else;
- the tracing API in a fresh process, ringflow.tracing and the C API alike:
  RINGFLOW_DISABLED=0 / false and RINGFLOW_TRACE_DISABLED=off leave it on
  (they used to turn it off), on / y turn it off, an unrecognised value is
  on (with one warning from Python); the sampling rate is the first usable
  of RINGFLOW_TRACE_SAMPLE_RATE and MLFLOW_TRACE_SAMPLING_RATIO.
(The hook's switch under the same rule: test_hook.py.)
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ringflow import _env

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "build" / "release" / "libringflow.so"

VALUES = [None, "", " ", "\t\n", "1", "true", "TRUE", " yes\n", "On", "0", "false", "No",
          "OFF ", "y", "2", "disable", "of", "onn", "-1", "truee", "\v0\f"]


def test_python_and_c_read_switches_alike():
    assert LIB.exists(), "build first: make"
    lib = ctypes.CDLL(str(LIB))
    lib.rf_flag_word.argtypes = [ctypes.c_char_p]
    lib.rf_flag_word.restype = ctypes.c_int
    for v in VALUES:
        w = lib.rf_flag_word(None if v is None else v.encode())
        for default in (False, True):
            c = default if w < 0 else w != 0
            assert _env.flag_value(v, default, "RF_TEST") == c, (v, default, w)
    # The words themselves, as README.md's Configuration table states them.
    assert [_env.flag_value(v, False) for v in _env.ON_WORDS] == [True] * 4
    assert [_env.flag_value(v, True) for v in _env.OFF_WORDS] == [False] * 4


_BOTH = """
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
lib.rf_trace_enabled.restype = ctypes.c_bool
lib.rf_trace_sample_rate.restype = ctypes.c_double
import ringflow.tracing as t
print(json.dumps({"py": [t.is_enabled(), t._rate],
                  "c": [lib.rf_trace_enabled(), lib.rf_trace_sample_rate()]}))
"""


def tracing_config(**env: str) -> tuple[list, list, str]:
    """In a fresh process with `env`: [enabled, sampling rate] as
    ringflow.tracing and as libringflow's C tracing API read them."""
    assert LIB.exists(), "build first: make"
    e = {k: v for k, v in os.environ.items()
         if k not in ("RINGFLOW_DISABLED", "RINGFLOW_TRACE_DISABLED",
                      "RINGFLOW_TRACE_SAMPLE_RATE", "MLFLOW_TRACE_SAMPLING_RATIO")}
    e.update(env)
    p = subprocess.run([sys.executable, "-c", _BOTH, str(LIB)], env=e, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return out["py"], out["c"], p.stderr


@pytest.mark.parametrize("env,on", [
    ({}, True),
    ({"RINGFLOW_DISABLED": ""}, True),
    ({"RINGFLOW_DISABLED": "0"}, True),
    ({"RINGFLOW_DISABLED": "false"}, True),
    ({"RINGFLOW_TRACE_DISABLED": "off"}, True),
    ({"RINGFLOW_TRACE_DISABLED": "0"}, True),
    ({"RINGFLOW_DISABLED": "1"}, False),
    ({"RINGFLOW_DISABLED": "on"}, False),
    ({"RINGFLOW_TRACE_DISABLED": "yes"}, False),
    ({"RINGFLOW_DISABLED": "0", "RINGFLOW_TRACE_DISABLED": "TRUE"}, False),
])
def test_tracing_switches_in_python_and_c(env, on):
    py, c, _ = tracing_config(**env)
    assert py[0] is on and c[0] is on


@pytest.mark.parametrize("env,rate", [
    ({}, 1.0),
    ({"RINGFLOW_TRACE_SAMPLE_RATE": "0.25"}, 0.25),
    ({"MLFLOW_TRACE_SAMPLING_RATIO": " 0.5 "}, 0.5),
    ({"RINGFLOW_TRACE_SAMPLE_RATE": "0.1", "MLFLOW_TRACE_SAMPLING_RATIO": "0.9"}, 0.1),
    # an unusable first value is passed over (and warned about / counted)
    ({"RINGFLOW_TRACE_SAMPLE_RATE": "2", "MLFLOW_TRACE_SAMPLING_RATIO": "0"}, 0.0),
    ({"RINGFLOW_TRACE_SAMPLE_RATE": "0.5abc"}, 1.0),
    ({"RINGFLOW_TRACE_SAMPLE_RATE": "nan"}, 1.0),
])
def test_sampling_rate_in_python_and_c(env, rate):
    py, c, _ = tracing_config(**env)
    assert py[1] == rate and c[1] == rate


def test_unrecognised_switch_is_on_with_a_warning():
    py, c, err = tracing_config(RINGFLOW_DISABLED="y")
    assert py[0] is False and c[0] is False
    assert "RINGFLOW_DISABLED='y'" in err and "taken as on" in err
