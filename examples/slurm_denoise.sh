#!/bin/bash
# Denoise a folder of images with a SLURM job array.  The inputs are what
# `tvnumba denoise IN_DIR` takes (every image file and Zarr store in the folder, sorted);
# task k of N takes inputs k, k+N, k+2N, ... (`--shard k/N`), for any regular array
# range: --array=0-7, --array=1-8, --array=0-14:2.
#
#   sbatch --array=0-7 examples/slurm_denoise.sh /data/raw /data/denoised --weight 0.1
#
# Safe to re-submit: finished outputs are skipped (each file is written atomically,
# each chunked volume resumes from its finished chunks), and each task clears only the
# temporaries of its own inputs.  Two inputs that would write one output (a.png and
# a.tif both give a.tif) are both refused, in whichever task holds them.
# Exit status: 0 done, 1 some inputs failed (one line each in the task's .err file),
# 2 a usage error (no such folder, an irregular array, a bad option).
#SBATCH --job-name=tvnumba-denoise
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=tvnumba-%A_%a.out
#SBATCH --error=tvnumba-%A_%a.err
set -euo pipefail

usage="usage: sbatch --array=0-N slurm_denoise.sh IN_DIR OUT_DIR [tvnumba denoise options]"
in_dir=${1:?$usage}
out_dir=${2:?$usage}
shift 2
if [ ! -d "$in_dir" ]; then
    echo "slurm_denoise.sh: $in_dir: no such folder" >&2
    exit 2
fi

# This task's place in the array, whatever its first index and step.
task=${SLURM_ARRAY_TASK_ID:-0}
first=${SLURM_ARRAY_TASK_MIN:-$task}
last=${SLURM_ARRAY_TASK_MAX:-$task}
step=${SLURM_ARRAY_TASK_STEP:-1}
count=${SLURM_ARRAY_TASK_COUNT:-1}
if (( last - first != (count - 1) * step || (task - first) % step != 0 )); then
    echo "slurm_denoise.sh: the array $first-$last:$step with $count tasks is not a" \
         "regular range; submit --array=FIRST-LAST[:STEP]" >&2
    exit 2
fi
index=$(( (task - first) / step ))

threads=${SLURM_CPUS_PER_TASK:-1}
# Numba's pool must not be larger than the allocation (tvnumba --threads uses it).
export NUMBA_NUM_THREADS=$threads
echo "task $task: share $index of $count, $threads threads"
# TVNUMBA overrides the command (e.g. "python -m tvnumba" from a source checkout).
exec ${TVNUMBA:-tvnumba} denoise "$in_dir" -o "$out_dir" --shard "$index/$count" \
    --jobs 1 --threads "$threads" --quiet --json "$@"
