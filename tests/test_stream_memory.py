"""Issue #16: training streams a file larger than the memory the process may use, and finishes.

A child process (Linux) caps its data size (``RLIMIT_DATA``: heap and private writable mappings;
``RLIMIT_AS`` would also count TensorFlow's ~2 GiB of libraries and reserved address space) at
what it uses plus ``BUDGET`` and, under the cap, fits the spec in one pass over a file over
3x ``BUDGET`` on disk, trains one epoch on it and scores separate test rows. Then, under the same
cap, loading the file whole must fail (``MemoryError``, or the child dies: pandas' parser can
crash when malloc fails), so the cap is real and the test fails if streaming ever holds the file.

Not capped: TensorFlow's start and a warm-up run on one chunk, and in the training pass the
graph's construction and its first two chunks (the epoch kernel's compilation), costs that do
not grow with the file; the cap is set after them, from the data size at that point. Allocator
settings (``ALLOCATOR``) make the data size follow what the process holds, not what allocators
keep: glibc unmaps every freed block over 128 KiB and gives back its heap's free top, one malloc
arena, and Arrow (the parsed strings) allocates through malloc instead of its own pool.

Measured (2 cores, 8,192-row chunks; the shuffle window is one chunk, as the default 100,000 rows
alone would take ~100 MiB with their copies): the spec pass fails under 24 MiB and finishes
under 28 (the parser's buffers), the training pass from chunk 2 finishes under 24; so ``BUDGET``
is 40 MiB and the file ~135 MB. Loading the file whole needs ~630 MiB at its peak.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import deepfm_graph
from deepfm_graph.datasets.criteo import SCHEMA, make_criteo

pytestmark = pytest.mark.slow

ROOT = Path(deepfm_graph.__file__).resolve().parents[1]  # the checkout the child imports
MiB = 1 << 20
BUDGET = 40 * MiB
CHUNK_ROWS = 8_192
BLOCK_CHUNKS, REPEATS = 17, 4  # the training file: 17 chunks of rows written 4 times, ~135 MB
TEST_ROWS = 20_000
ALLOCATOR = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(128 << 10),
             "MALLOC_TRIM_THRESHOLD_": str(128 << 10), "ARROW_DEFAULT_MEMORY_POOL": "system"}

CHILD = r"""
import errno, gc, json, resource, sys
import deepfm_graph
deepfm_graph.configure_tensorflow()
from sklearn.metrics import roc_auc_score
from deepfm_graph import DeepFM
from deepfm_graph.batches import FileSource
from deepfm_graph.datasets.criteo import SCHEMA
from deepfm_graph.features import DatasetSchema

warm, big, test, budget, chunk_rows = json.loads(sys.argv[1])
schema = DatasetSchema.from_dict(SCHEMA)
report = {}


def cap(name):
    # The data size now plus the budget, as the soft limit (uncap lifts it).
    gc.collect()
    with open("/proc/self/status") as f:
        report[name] = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmData:"))
    resource.setrlimit(resource.RLIMIT_DATA, (report[name] + budget, resource.RLIM_INFINITY))


def uncap():
    resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


class CappedSource(FileSource):
    cap_from = None  # the training pass's chunk from which on it is capped

    def training(self, *args, **kwargs):
        for k, part in enumerate(super().training(*args, **kwargs)):
            if k == self.cap_from:
                cap("training_base")
            yield part


def fit_and_score(path, capped):
    source = CappedSource(schema, path, chunk_rows=chunk_rows)
    if capped:
        cap("spec_base")
    source.fit_spec()
    uncap()
    # With a window of one chunk, chunk 1 trains with chunk 0: the kernel is compiled before chunk 2.
    source.cap_from = 2 if capped else None
    model = DeepFM(embedding_size=4, deep_layers=(16,), dropout_deep=(1.0, 1.0), epoch=1, batch_size=1024,
                   eval_train=False, random_seed=3).fit_stream(source, shuffle_window=chunk_rows)
    held = FileSource(schema, test, chunk_rows=chunk_rows)
    held.spec = source.spec
    labels, predictions = model.predict_parts(held.training())
    return source.spec, roc_auc_score(labels, predictions)


fit_and_score(warm, capped=False)  # TensorFlow's threads, the allocators' arenas
spec, report["auc"] = fit_and_score(big, capped=True)
print(json.dumps(report), flush=True)
try:
    spec.transform(schema.read(big))
    report["whole"] = "loaded"
except (MemoryError, OSError, ValueError) as error:
    # pandas' parser reports running out of memory as a parse error, system calls as ENOMEM
    if not (isinstance(error, MemoryError) or getattr(error, "errno", None) == errno.ENOMEM
            or "out of memory" in str(error)):
        raise
    report["whole"] = f"{type(error).__name__}: {error}"[:300]
print(json.dumps(report), flush=True)
"""


def write_files(directory):
    """``(training file, its first chunk, test file)`` under ``directory``: the training file is
    BLOCK_CHUNKS chunks of Criteo-shaped rows written REPEATS times (formatting them is the slow
    part); the test rows are other rows of the same generator."""
    train, test = make_criteo(BLOCK_CHUNKS * CHUNK_ROWS, TEST_ROWS, seed=16)
    options = {"sep": SCHEMA["sep"], "header": False, "index": False, "lineterminator": "\n"}
    big, warm, held = directory / "train.tsv", directory / "warm.tsv", directory / "test.tsv"
    block = train.to_csv(**options)
    with open(big, "w", encoding="utf-8", newline="") as f:
        for _ in range(REPEATS):
            f.write(block)
    train.iloc[:CHUNK_ROWS].to_csv(warm, **options)
    test.to_csv(held, **options)
    return big, warm, held


def run_child(big, warm, test, budget=BUDGET, timeout=300):
    """Run CHILD; ``(exit code, its last report or None, stderr)``."""
    env = {**os.environ, **ALLOCATOR,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argument = json.dumps([str(warm), str(big), str(test), budget, CHUNK_ROWS])
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CHILD, argument], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    reports = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, json.loads(reports[-1]) if reports else None, done.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="caps memory with RLIMIT_DATA and reads /proc (Linux)")
def test_training_streams_a_file_three_times_the_memory_cap_which_cannot_hold_it_whole(tmp_path):
    big, warm, test = write_files(tmp_path)
    size = big.stat().st_size
    assert size >= 3 * BUDGET, f"the file ({size / MiB:.0f} MiB) should be at least 3x the budget"
    code, report, stderr = run_child(big, warm, test)
    big.unlink()  # 135 MB; the same seed writes it again
    assert report is not None, f"the capped run failed (exit {code}):\n{stderr[-3000:]}"
    assert report["auc"] > 0.6, report
    # The cap is real: loading the file whole runs out of memory (or crashes the child).
    assert code < 0 or (code == 0 and report["whole"] != "loaded"), \
        f"loading the file whole under the cap: exit {code}, {report}\n{stderr[-3000:]}"
