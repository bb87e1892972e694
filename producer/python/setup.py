"""Build the ringflow package: the CPython extension and the sidecar programs.

`pip install` gives the whole product: the Inspect hook, its C extension,
and `ringflowd` / `ringflow-dump` compiled from the same C sources and
installed as package data under ringflow/bin/ (the console scripts
`ringflowd` and `ringflow-dump` exec them; the hook starts its own).

Sources: from a checkout, the repository's ringbuf/, producer/ and sidecar/
are staged under csrc/ first (and the top-level LICENSE beside this file) (setuptools accepts only relative source paths,
and the sdist must carry them); an sdist already holds csrc/ and is built
from it alone.  Needs a C compiler and Debian's libmsgpack-dev zlib1g-dev
libjansson-dev liburing-dev libcurl4-openssl-dev libarchive-dev
libmicrohttpd-dev (scripts/install-deps.sh).  Warnings are shown, never
fatal here: a user's newer compiler must not break `pip install` (the
project's own `make` builds keep -Werror).
"""
import os
import shutil
import subprocess
import sysconfig
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CSRC = "csrc"
SIDE_DIRS = ("io", "ingest", "track", "trace", "ops", "daemon")
SUBDIRS = ("ringbuf", "producer", *(os.path.join("sidecar", d) for d in SIDE_DIRS),
           os.path.join("sidecar", "bin"))
PROGRAMS = {"ringflowd": "ringflowd.c", "ringflow-dump": "ringflow_dump.c"}
CFLAGS = ["-std=c17", "-D_GNU_SOURCE", "-O2", "-pthread", "-Wall", "-Wextra",
          "-Wno-missing-field-initializers"]
PROGRAM_LIBS = ["-ljansson", "-luring", "-lcurl", "-larchive", "-lmicrohttpd", "-lm",
                "-lmsgpackc", "-lz", "-lpthread"]


def in_checkout() -> bool:
    return os.path.isfile(os.path.join(ROOT, "sidecar", "bin", "ringflowd.c")) and os.path.isdir(
        os.path.join(ROOT, "ringbuf"))


def stage() -> None:
    """Copy the C sources of a checkout under csrc/ (fresh each build)."""
    dst_root = os.path.join(HERE, CSRC)
    shutil.rmtree(dst_root, ignore_errors=True)
    for sub in SUBDIRS:
        src = os.path.join(ROOT, sub)
        dst = os.path.join(dst_root, sub)
        os.makedirs(dst, exist_ok=True)
        for f in sorted(os.listdir(src)):
            if f.endswith((".c", ".h")):
                shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
    shutil.copy2(os.path.join(ROOT, "LICENSE"), os.path.join(HERE, "LICENSE"))
    shutil.copy2(os.path.join(ROOT, "VERSION"), os.path.join(dst_root, "VERSION"))


def sources(sub: str) -> list[str]:
    d = os.path.join(CSRC, sub)
    return [os.path.join(d, f) for f in sorted(os.listdir(os.path.join(HERE, d))) if f.endswith(".c")]


if in_checkout():
    stage()
elif not os.path.isdir(os.path.join(HERE, CSRC, "sidecar", "io")):
    raise SystemExit("ringflow: no C sources: build from the repository (producer/python) "
                     "or from an sdist made by `python -m build --sdist`")

INCLUDES = [os.path.join(CSRC, s) for s in SUBDIRS[:-1]]
with open(os.path.join(HERE, CSRC, "VERSION"), encoding="ascii") as f:
    VERSION = f.read().strip()  # the one copy: the repository's VERSION file
CFLAGS.append(f'-DRF_VERSION="{VERSION}"')


class BuildWithPrograms(build_ext):
    """build_ext, then compile ringflowd and ringflow-dump into ringflow/bin/."""

    def run(self):
        super().run()
        self.build_programs()

    def build_programs(self):
        cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        cc = cc.split()
        tmp = os.path.join(self.build_temp, "programs")
        os.makedirs(tmp, exist_ok=True)
        incs = [f"-I{os.path.join(HERE, i)}" for i in INCLUDES]
        extra = os.environ.get("CFLAGS", "").split()
        lib_srcs = [s for sub in SUBDIRS[:-1] for s in sources(sub)]

        def compile_one(src: str) -> str:
            obj = os.path.join(tmp, src.replace(os.sep, "_")[:-2] + ".o")
            full = os.path.join(HERE, src)
            if not (os.path.exists(obj) and os.path.getmtime(obj) >= os.path.getmtime(full)):
                self.spawn([*cc, *CFLAGS, *extra, *incs, "-c", full, "-o", obj])
            return obj

        progs = [os.path.join(CSRC, "sidecar", "bin", f) for f in PROGRAMS.values()]
        jobs = max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(jobs) as ex:
            objs = list(ex.map(compile_one, lib_srcs + progs))
        lib_objs, prog_objs = objs[: len(lib_srcs)], objs[len(lib_srcs):]
        out_dir = os.path.join(self.build_lib, "ringflow", "bin")
        os.makedirs(out_dir, exist_ok=True)
        ldflags = os.environ.get("LDFLAGS", "").split()
        for name, obj in zip(PROGRAMS, prog_objs):
            exe = os.path.join(out_dir, name)
            self.spawn([*cc, "-pthread", *ldflags, obj, *lib_objs, "-o", exe, *PROGRAM_LIBS])
            if self.inplace:  # editable installs: beside the sources
                dst = os.path.join(HERE, "ringflow", "bin")
                os.makedirs(dst, exist_ok=True)
                shutil.copy2(exe, os.path.join(dst, name))

    def spawn(self, cmd, **kw):
        # subprocess directly: the output of a failing compile reaches pip's log.
        print(" ".join(cmd))
        subprocess.run(cmd, check=True)


setup(
    version=VERSION,
    cmdclass={"build_ext": BuildWithPrograms},
    ext_modules=[
        Extension(
            "ringflow._ringflow",
            sources=["ringflow/_ringflow.c", *sources("ringbuf"),
                     *[s for s in sources("producer")
                       if os.path.basename(s) in {"rf_producer.c", "rf_rec.c", "rf_trace_rec.c",
                                                 "rf_zone.c"}]],
            include_dirs=INCLUDES[:2],
            define_macros=[("_GNU_SOURCE", "1")],
            libraries=["msgpackc", "z"],
            extra_compile_args=["-std=gnu17", "-O2", "-Wall", "-Wextra",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
        )
    ],
)
