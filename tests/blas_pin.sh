#!/usr/bin/env bash
# blas_pin.sh VAEBENCH: whatever kernel OpenBLAS picks by itself (forced
# here with OPENBLAS_CORETYPE), vaebench runs the one of the CPU's ISA
# class: SkylakeX on AVX-512, Haswell on AVX2; VAEBENCH_BLAS_CORETYPE=keep
# keeps the library's choice.
set -euo pipefail
bin=$1
flags=$(grep -m1 '^flags' /proc/cpuinfo)
if [[ $flags == *avx512f* && $flags == *avx512bw* && $flags == *avx512vl* ]]; then
  want=SkylakeX others=(Cooperlake Prescott Haswell Zen)
elif [[ $flags == *avx2* && $flags == *fma* ]]; then
  want=Haswell others=(Zen Prescott Sandybridge)
else
  echo "blas_pin: CPU has neither AVX-512 nor AVX2; nothing to pin"; exit 0
fi
fail=0
for c in "${others[@]}"; do
  out=$(env -u VAEBENCH_BLAS_CORETYPE -u VAEBENCH_BLAS_REEXEC \
        OPENBLAS_CORETYPE=$c "$bin" version)
  if [[ $out != *"kernel $want,"* ]]; then
    echo "blas_pin: library forced to $c, expected $want: $out"; fail=1
  fi
done
out=$(env -u VAEBENCH_BLAS_REEXEC VAEBENCH_BLAS_CORETYPE=keep \
      OPENBLAS_CORETYPE=Prescott "$bin" version)
if [[ $out != *"kernel Prescott,"* ]]; then
  echo "blas_pin: keep should leave Prescott: $out"; fail=1
fi
((fail == 0)) && echo "blas_pin: pinned to $want from ${others[*]}"
exit $fail
