# Sourced on the GPU machine before running hrm binaries built against pip's torch: puts
# libtorch's, the CUDA wheels' and the toolkit's libraries (NVRTC for hrm's kernels) on the
# loader's path.
site=$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
export LD_LIBRARY_PATH="$site/torch/lib:$site/nvidia/cu13/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The shipped configs' data: their `local` copies under a carried .dev/data (a copy of
# ../shared/data), since the device reaches no Hub.
if [ -z "${HRM_LOCAL_DATA:-}" ] && [ -d .dev/data ]; then export HRM_LOCAL_DATA="$PWD/.dev/data"; fi
