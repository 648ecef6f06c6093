#!/usr/bin/env bash
# Install the peer clients of `make bench-peer`, each in a throwaway venv under bench/
# (git-ignored), idempotently: a peer already installed is left as it is. A peer that
# fails to install is reported and skipped; bench/runner.py --peers runs the ones present.
#
#   bench/.peer         GuideLLM (pinned), with an offline whitespace tokenizer in tokenizer/
#   bench/.peer-vllm    the vllm wheel WITHOUT its dependencies (no torch: only the
#                       benchmark client module is used, by bench/peers/vllm_client.py),
#                       plus what that module imports: aiohttp, regex, tqdm
#   bench/.peer-aiperf  AIPerf (pinned), with the same kind of tokenizer in tokenizer/
#
#   bash bench/peers/install.sh [guidellm] [vllm] [aiperf]      # default: all three
set -u
PYTHON=${PYTHON:-python3}
GUIDELLM_VERSION=0.8.1
VLLM_VERSION=0.33.0
AIPERF_VERSION=0.13.0
cd "$(dirname "$0")/../.."
TOKENIZER=tests/fixtures/tools/make_tokenizer.py

venv() {  # venv DIR: create DIR as a venv unless it has a python already
    test -x "$1/bin/python" || { "$PYTHON" -m venv "$1" && "$1/bin/python" -m pip install --quiet --upgrade pip; }
}

guidellm() {
    test -x bench/.peer/bin/guidellm && test -d bench/.peer/tokenizer && return 0
    venv bench/.peer &&
        bench/.peer/bin/python -m pip install --quiet "guidellm==$GUIDELLM_VERSION" &&
        bench/.peer/bin/python "$TOKENIZER" bench/.peer/tokenizer
}

vllm() {
    bench/.peer-vllm/bin/python -c "import aiohttp, regex, tqdm; from importlib.metadata import version; assert version('vllm') == '$VLLM_VERSION'" 2>/dev/null && return 0
    venv bench/.peer-vllm &&
        bench/.peer-vllm/bin/python -m pip install --quiet --no-deps "vllm==$VLLM_VERSION" &&
        bench/.peer-vllm/bin/python -m pip install --quiet "aiohttp>=3.14.4" regex tqdm
}

aiperf() {
    test -x bench/.peer-aiperf/bin/aiperf && test -d bench/.peer-aiperf/tokenizer && return 0
    venv bench/.peer-aiperf &&
        bench/.peer-aiperf/bin/python -m pip install --quiet "aiperf==$AIPERF_VERSION" &&
        bench/.peer-aiperf/bin/python "$TOKENIZER" bench/.peer-aiperf/tokenizer
}

status=0
for peer in "${@:-guidellm vllm aiperf}"; do
    for p in $peer; do
        if "$p"; then echo "peer $p: installed"; else echo "peer $p: install FAILED, skipped" >&2; status=1; fi
    done
done
exit $status
