"""Assemble the packages the GPU check needs on the borrowed GPU machine: ``python benchmarks/gpu_pack.py``.

That machine is offline; its Python 3.12 has torch 2.11.0+cu130, transformers 5.17.0, accelerate, peft,
triton and the packages in ``PRESENT`` (``/work/.library/device/KINDS.md``, read 2026-11-17), and no trl,
datasets, math-verify, unsloth, unsloth_zoo, bitsandbytes or torchao. A command there may carry at most
64 MiB, the git tree included. This script resolves the pinned stack's missing closure by reading each
wheel's ``Requires-Dist`` (markers evaluated for CPython 3.12 on Linux x86_64, extras ignored), starting
from corerl's pins (``corerl.machine.install``), downloads every missing wheel for Python 3.12 manylinux x86_64
with ``pip download --no-deps`` into ``.gpucheck/wheels``, extracts them into ``.gpucheck/site`` minus
what the check never loads (``TRIM``), and prints each package's size and the total with the tree,
exiting 1 when it is over the limit. ``.gpucheck/`` is ignored by git: name ``.gpucheck/site`` in
the run's ``carry`` and put it on ``PYTHONPATH`` there (docs/t4.md, "GPU check").

Left out on purpose (``LEFT_OUT``): declared dependencies that no module the check imports needs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 64 * 2**20  # what one device command may carry, tree included
# The device image's Python packages (KINDS.md, "Python packages already there"), by canonical name.
PRESENT = frozenset(
    canonicalize_name(name)
    for name in [
        "absl-py",
        "accelerate",
        "aiofiles",
        "aiohappyeyeballs",
        "aiohttp",
        "aiosignal",
        "annotated-doc",
        "anyio",
        "attrs",
        "botorch",
        "build",
        "certifi",
        "charset-normalizer",
        "chex",
        "click",
        "cloudpickle",
        "cmake",
        "colorama",
        "contourpy",
        "coverage",
        "cuda-bindings",
        "cuda-core",
        "cuda-pathfinder",
        "cuda-toolkit",
        "cupy-cuda13x",
        "cycler",
        "cython",
        "diffrax",
        "e3nn",
        "einops",
        "equinox",
        "etils",
        "execnet",
        "filelock",
        "flatbuffers",
        "flax",
        "fonttools",
        "formulaic",
        "frozenlist",
        "fsspec",
        "gpytorch",
        "grpcio",
        "h11",
        "h5py",
        "hf-xet",
        "httpcore",
        "httpx",
        "huggingface-hub",
        "humanize",
        "hypothesis",
        "idna",
        "imageio",
        "iniconfig",
        "interface-meta",
        "jax",
        "jaxlib",
        "jaxtyping",
        "jinja2",
        "joblib",
        "kiwisolver",
        "lazy-loader",
        "lightning",
        "lightning-utilities",
        "linear-operator",
        "lineax",
        "llvmlite",
        "lxml",
        "markdown",
        "markdown-it-py",
        "markupsafe",
        "matplotlib",
        "mdurl",
        "meson",
        "ml-dtypes",
        "mpi4py",
        "mpmath",
        "msgpack",
        "multidict",
        "multipledispatch",
        "mypy-extensions",
        "nanobind",
        "narwhals",
        "networkx",
        "ninja",
        "numba",
        "numba-cuda",
        "numpy",
        "numpyro",
        "nvidia-ml-py",
        "onnx",
        "onnx-ir",
        "onnxruntime",
        "onnxscript",
        "opencv-python-headless",
        "optax",
        "opt-einsum",
        "opt-einsum-fx",
        "optimistix",
        "orbax-checkpoint",
        "packaging",
        "pandas",
        "pathspec",
        "patsy",
        "pillow",
        "pip",
        "pluggy",
        "portalocker",
        "prometheus-client",
        "propcache",
        "protobuf",
        "psutil",
        "pyarrow",
        "pybind11",
        "py-cpuinfo",
        "pygments",
        "pyparsing",
        "pyproject-hooks",
        "pyre-extensions",
        "pytest",
        "python-dateutil",
        "pytorch-lightning",
        "pyyaml",
        "regex",
        "requests",
        "rich",
        "sacrebleu",
        "safetensors",
        "scikit-build-core",
        "scikit-image",
        "scikit-learn",
        "scipy",
        "seaborn",
        "sentencepiece",
        "sentence-transformers",
        "setuptools",
        "shellingham",
        "simplejson",
        "six",
        "sortedcontainers",
        "statsmodels",
        "sympy",
        "tabulate",
        "tensorboard",
        "threadpoolctl",
        "tifffile",
        "tiktoken",
        "timm",
        "tokenizers",
        "toolz",
        "torch",
        "torchaudio",
        "torchdiffeq",
        "torch-geometric",
        "torchmetrics",
        "torchvision",
        "tqdm",
        "transformers",
        "treescope",
        "triton",
        "typer",
        "typing-extensions",
        "typing-inspect",
        "urllib3",
        "uvloop",
        "wadler-lindig",
        "werkzeug",
        "wheel",
        "wrapt",
        "xarray",
        "xxhash",
        "yarl",
        "zipp",
    ]
)
# Declared by unsloth or unsloth_zoo, never imported by what the check runs (read in the 2026.10.9 wheels).
LEFT_OUT = {
    "xformers": "optional in Unsloth (models/_utils.py: ModuleNotFoundError -> SDPA); a torch-specific build of ~100 MB",
    "diffusers": "imported only by unsloth's studio/ (trimmed)",
    "hf-transfer": "downloads only; the check is offline",
    "torchcodec": "audio extras only",
}
TARGET = dict(
    default_environment(),
    python_version="3.12",
    python_full_version="3.12.3",
    implementation_version="3.12.3",
    sys_platform="linux",
    platform_system="Linux",
    platform_machine="x86_64",
    os_name="posix",
    implementation_name="cpython",
    platform_python_implementation="CPython",
)
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in range(17, 40)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]
# Paths (inside the site folder) the check never loads: unsloth's web app and CLI, unsloth_zoo's Apple MLX
# backend (imported under ImportError guards, Apple Silicon only), tests (torchao ships a top-level
# ``test/`` package) and caches, type stubs, the wheels' RECORD file lists (pip's uninstall data; the
# version checks read METADATA), every bitsandbytes library but the CUDA 13.0 one (the machine's torch
# is cu130), torchao's Hopper/MX kernel libraries (``torchao/__init__.py`` loads whichever ``_C*.so``
# exist; 4-bit QLoRA goes through bitsandbytes) and its benchmark models.
TRIM = re.compile(
    r"^(studio/|unsloth_cli/|unsloth_zoo/mlx/|([^/]+/)?tests?/|.*/__pycache__/|.*\.pyi$|[^/]+\.dist-info/RECORD$"
    r"|bitsandbytes/libbitsandbytes_(?!cuda130\.so$)[^/]+$|torchao/_C[^/]*\.so$|torchao/_models/)"
)


def roots() -> list[str]:
    """corerl's pins of the packages missing there (and peft, whose version there is unknown)."""
    from corerl.machine.install import GPU_STACK, STACK

    wanted = {"trl", "datasets", "math-verify", "peft", "unsloth", "unsloth-zoo", "bitsandbytes"}
    return [pin for pin in (*STACK, *GPU_STACK) if canonicalize_name(Requirement(pin).name) in wanted]


def download(requirement: str, wheels: Path) -> Path:
    """The newest wheel for CPython 3.12 manylinux x86_64 that satisfies ``requirement`` (cached)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", "3.12", "--implementation", "cp", "-d", str(wheels)]
    command += [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    before = set(wheels.glob("*.whl"))
    done = subprocess.run([*command, requirement], capture_output=True, text=True)
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if "is ignored" not in line]
        raise SystemExit(f"gpu_pack: pip cannot download {requirement}: {' '.join(errors)[-400:]}")
    name = canonicalize_name(Requirement(requirement).name)
    new = sorted(set(wheels.glob("*.whl")) - before) or [
        path for path in wheels.glob("*.whl") if canonicalize_name(path.name.split("-")[0]) == name
    ]
    matching = [path for path in new if canonicalize_name(path.name.split("-")[0]) == name]
    return max(matching, key=lambda path: Version(path.name.split("-")[1]))


def requires(wheel: Path) -> list[Requirement]:
    """The wheel's unconditional requirements on the target (extras dropped)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    found = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.split(":", 1)[1].strip())
        if requirement.marker is None or requirement.marker.evaluate({**TARGET, "extra": ""}):
            found.append(requirement)
    return found


def resolve(wheels: Path) -> dict[str, Path]:
    """Canonical name -> wheel of every package missing there, breadth first from ``roots()``."""
    chosen: dict[str, Path] = {}
    queue = [Requirement(pin) for pin in roots()]
    while queue:
        requirement = queue.pop(0)
        name = canonicalize_name(requirement.name)
        if name in PRESENT or name in LEFT_OUT:
            continue
        if name in chosen:
            version = chosen[name].name.split("-")[1]
            if not requirement.specifier.contains(version, prereleases=True):
                raise SystemExit(f"gpu_pack: {name} {version} does not satisfy {requirement}")
            continue
        chosen[name] = download(f"{requirement.name}{requirement.specifier}", wheels)
        queue += requires(chosen[name])
    return chosen


def extract(chosen: dict[str, Path], site: Path) -> dict[str, int]:
    """Unpack every wheel into ``site`` minus ``TRIM``; bytes kept per package."""
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    sizes = {}
    for name, wheel in sorted(chosen.items()):
        with zipfile.ZipFile(wheel) as archive:
            kept = [info for info in archive.infolist() if not TRIM.match(info.filename)]
            for info in kept:
                archive.extract(info, site)
        sizes[name] = sum(info.file_size for info in kept)
    return sizes


def tree_bytes() -> int:
    """What a device command carries besides ``carry``: tracked and untracked-not-ignored files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum(
        (ROOT / name.decode()).stat().st_size for name in listed if name and (ROOT / name.decode()).is_file()
    )


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(ROOT / ".gpucheck"), help="wheels/ and site/ go here (git-ignored)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "wheels").mkdir(parents=True, exist_ok=True)
    chosen = resolve(out / "wheels")
    sizes = extract(chosen, out / "site")
    mib = 2**20
    print("| package | wheel | downloaded MiB | extracted and trimmed MiB |\n|---|---|---|---|")
    for name, wheel in sorted(chosen.items(), key=lambda item: -sizes[item[0]]):
        print(f"| {name} | {wheel.name} | {wheel.stat().st_size / mib:.1f} | {sizes[name] / mib:.1f} |")
    for name, reason in LEFT_OUT.items():
        print(f"left out {name}: {reason}")
    site, tree = folder_bytes(out / "site"), tree_bytes()
    downloaded = sum(wheel.stat().st_size for wheel in chosen.values())
    print(
        f"downloaded {downloaded / mib:.1f} MiB in {len(chosen)} wheels; site {site / mib:.1f} MiB + git tree "
        f"{tree / mib:.1f} MiB = {(site + tree) / mib:.1f} MiB of the {LIMIT / mib:.0f} MiB a command carries"
    )
    if site + tree > LIMIT:
        print("gpu_pack: over the limit: trim more (TRIM) or carry less", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
