#!/bin/bash
# Denoise a folder of images with a SLURM job array: task k of N takes every N-th file
# (k, k+N, k+2N, ... in sorted order), all tasks write into one output folder.
#
#   sbatch --array=0-7 examples/slurm_denoise.sh /data/raw /data/denoised --weight 0.1
#
# Safe to re-submit: finished outputs are skipped (tvnumba denoise writes each file
# atomically), and each task clears only the temporaries of its own files, so tasks
# sharing the folder never touch each other's work.  Exit status 1 = some files failed
# (one line each in the task's .err file).
#SBATCH --job-name=tvnumba-denoise
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=tvnumba-%A_%a.out
#SBATCH --error=tvnumba-%A_%a.err
set -euo pipefail

in_dir=${1:?usage: sbatch --array=0-N slurm_denoise.sh IN_DIR OUT_DIR [tvnumba denoise options]}
out_dir=${2:?usage: sbatch --array=0-N slurm_denoise.sh IN_DIR OUT_DIR [options]}
shift 2

task=${SLURM_ARRAY_TASK_ID:-0}
ntasks=${SLURM_ARRAY_TASK_COUNT:-1}
threads=${SLURM_CPUS_PER_TASK:-1}
# Numba's pool must not be larger than the allocation (tvnumba --threads uses it).
export NUMBA_NUM_THREADS=$threads

# This task's share: every ntasks-th image file, starting at its index.
mapfile -t files < <(find "$in_dir" -maxdepth 1 -type f \
    \( -iname '*.tif' -o -iname '*.tiff' -o -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) \
    ! -name '.*' | sort | awk -v k="$task" -v n="$ntasks" '(NR - 1) % n == k')

if [ ${#files[@]} -eq 0 ]; then
    echo "task $task: no files" >&2
    exit 0
fi
echo "task $task/$ntasks: ${#files[@]} files, $threads threads"
# TVNUMBA overrides the command (e.g. "python -m tvnumba" from a source checkout).
exec ${TVNUMBA:-tvnumba} denoise "${files[@]}" -o "$out_dir" --jobs 1 --threads "$threads" --quiet --json "$@"
