"""Build the CPython extension from the same C sources as libringflow.

The C sources live in the repository's ringbuf/ and producer/ directories;
the package is built from a checkout (`pip install ./producer/python`).
Needs Debian's libmsgpack-dev and zlib1g-dev (scripts/install-deps.sh).
"""
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def rel(*parts):
    # setuptools wants paths relative to setup.py
    return os.path.relpath(os.path.join(ROOT, *parts), HERE)


ring = [rel("ringbuf", f) for f in sorted(os.listdir(os.path.join(ROOT, "ringbuf"))) if f.endswith(".c")]
producer = [rel("producer", f) for f in ("rf_producer.c", "rf_rec.c")]

setup(
    ext_modules=[
        Extension(
            "ringflow._ringflow",
            sources=["ringflow/_ringflow.c", *ring, *producer],
            include_dirs=[rel("ringbuf"), rel("producer")],
            define_macros=[("_GNU_SOURCE", "1")],
            libraries=["msgpackc", "z"],
            extra_compile_args=["-std=gnu17", "-O2", "-Wall", "-Wextra", "-Werror",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
        )
    ]
)
