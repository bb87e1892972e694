"""Build the CPython extension from the same C sources as libringflow.

The C sources live in the repository's ringbuf/ and producer/ directories;
the package is built from a checkout (`pip install ./producer/python`).
They are copied under build/csrc/ first: setuptools accepts only relative
source paths and would put objects of "../../" sources beside the sources.
Needs Debian's libmsgpack-dev and zlib1g-dev (scripts/install-deps.sh).
"""
import os
import shutil

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CSRC = os.path.join("build", "csrc")


def stage(subdir, names=None):
    src = os.path.join(ROOT, subdir)
    dst = os.path.join(HERE, CSRC, subdir)
    os.makedirs(dst, exist_ok=True)
    out = []
    for f in sorted(os.listdir(src)):
        if f.endswith(".h") or (f.endswith(".c") and (names is None or f in names)):
            shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
            if f.endswith(".c"):
                out.append(os.path.join(CSRC, subdir, f))
    return out


ring = stage("ringbuf")
producer = stage("producer", {"rf_producer.c", "rf_rec.c", "rf_trace_rec.c"})

setup(
    ext_modules=[
        Extension(
            "ringflow._ringflow",
            sources=["ringflow/_ringflow.c", *ring, *producer],
            include_dirs=[os.path.join(CSRC, "ringbuf"), os.path.join(CSRC, "producer")],
            define_macros=[("_GNU_SOURCE", "1")],
            libraries=["msgpackc", "z"],
            extra_compile_args=["-std=gnu17", "-O2", "-Wall", "-Wextra", "-Werror",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
        )
    ]
)
