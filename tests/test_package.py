"""``deepfm_graph/__init__.py``: the start-up configuration the scripts and tests call."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

COUNT_ARENAS = textwrap.dedent("""
    import ctypes, os, sys, tempfile, threading
    import deepfm_graph
    if sys.argv[1] == "configure":
        deepfm_graph.configure_tensorflow()
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    libc.fdopen.restype = ctypes.c_void_p
    barrier = threading.Barrier(12)

    def work():  # twelve threads allocating at once: each would take an arena of its own
        barrier.wait()
        blocks = [libc.malloc(1000) for _ in range(200)]
        barrier.wait()
        for block in blocks:
            libc.free(block)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with tempfile.TemporaryFile() as report:
        stream = ctypes.c_void_p(libc.fdopen(os.dup(report.fileno()), b"w"))
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        report.seek(0)
        print(report.read().decode().count("<heap nr="))
""")


def count_arenas(mode, env):
    run = subprocess.run([sys.executable, "-c", COUNT_ARENAS, mode], capture_output=True, text=True, env=env,
                         check=True)
    return int(run.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")
def test_configure_tensorflow_caps_malloc_arenas_unless_the_environment_sets_them():
    import deepfm_graph

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert count_arenas("plain", env) > deepfm_graph.MALLOC_ARENAS  # what the cap prevents
    assert count_arenas("configure", env) <= deepfm_graph.MALLOC_ARENAS
    assert count_arenas("configure", env | {"MALLOC_ARENA_MAX": "8"}) > deepfm_graph.MALLOC_ARENAS


def test_configure_tensorflow_sets_only_unset_variables(monkeypatch):
    import deepfm_graph

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    deepfm_graph.configure_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
