"""A real CPython extension module compiled with gcc: shared by the tests
and the benchmarks (stdlib only, so the benchmarks need no pytest)."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path
from typing import Optional

EXTENSION_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}

static PyObject *libc_strlen(PyObject *self, PyObject *arg) {
    const char *s = PyUnicode_AsUTF8(arg);
    if (!s) return NULL;
    return PyLong_FromSize_t(strlen(s) + (size_t)(strchr(s, 0) - s) * 0);
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "a + b"},
    {"strlen", libc_strlen, METH_O, "strlen from libc"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "@NAME@", NULL, -1, methods};

PyMODINIT_FUNC PyInit_@NAME@(void) { return PyModule_Create(&mod); }
"""


def compile_extension(
    out_dir: Path, name: str, suffix: str, *, compiler: str = "gcc", include: Optional[str] = None
) -> Path:
    """Compile a real extension module named ``name + suffix``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / f"{name}.c"
    src.write_text(EXTENSION_C.replace("@NAME@", name))
    out = out_dir / f"{name}{suffix}"
    inc = include or sysconfig.get_paths()["include"]
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", f"-I{inc}", str(src), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    src.unlink()
    return out
