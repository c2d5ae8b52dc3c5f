#!/usr/bin/env bash
# The device checks of one session on a lent GPU, in one go (logs under $OUT, or ./gpu_logs).
# Usage: bash benchmarks/gpu_check.sh [tests|example|bench|cp|denoise|profile|ncu ...]
# (default: tests example profile ncu bench)
set -u
OUT=${OUT:-gpu_logs}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 MPLBACKEND=Agg
steps=${*:-tests example profile ncu bench}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$OUT/card.txt"
python3 -c "import numpy, numba, numba_cuda, cupy; print(numpy.__version__, numba.__version__, numba_cuda.__version__, cupy.__version__)" 2>&1 | tee -a "$OUT/card.txt"
for s in $steps; do
  echo "=== $s $(date +%T)"
  case $s in
    tests) timeout 240 python3 -m pytest -q -m "cuda or gpu" tests/test_cuda.py -p no:cacheprovider \
             -W ignore::DeprecationWarning -x 2>&1 | tee "$OUT/tests.txt" | tail -25 ;;
    example) timeout 120 python3 docs/examples/plot_gpu.py 2>&1 | tee "$OUT/example.txt" ;;
    bench) timeout 200 python3 benchmarks/bench_cuda.py --shape 4096x4096 --shape 256x256x256 \
             --repeat 20 --no-cpu 2>&1 | tee "$OUT/bench.txt" ;;
    cp) timeout 120 python3 benchmarks/bench_cuda.py --cp --shape 4096x4096 --shape 256x256x256 \
             --repeat 20 2>&1 | tee "$OUT/cp.txt" ;;
    denoise) timeout 200 python3 benchmarks/bench_cuda.py --denoise --shape 4096x4096 2>&1 \
             | tee "$OUT/denoise.txt" ;;
    profile) timeout 100 python3 benchmarks/profile_cuda_call.py --parts 2>&1 | tee "$OUT/profile.txt" ;;
    ncu) timeout 150 ncu --clock-control none --kernel-name regex:kernel --launch-skip 2 \
           --launch-count 2 --section SpeedOfLight --section Occupancy --section LaunchStats \
           --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats \
           python3 benchmarks/profile_cuda_call.py --ncu > "$OUT/ncu.txt" 2>&1
         grep -E "Duration|Throughput|Registers|Achieved Occupancy|Theoretical Occupancy|Block Limit|Stall|Issued|Eligible|Waves|Grid Size|One or More" "$OUT/ncu.txt" | head -60 ;;
  esac
done
echo "=== done $(date +%T)"
