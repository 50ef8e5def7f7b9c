#!/usr/bin/env bash
# GPU checks of genlib on real MNIST (configs/mnist.yaml: one epoch of the small U-Net, DDPM):
# the pipeline on CUDA in fp32, in bf16, in bf16 with run.compile: true, and in bf16 with 2
# processes (nccl) when 2 GPUs exist. For each, it prints the train stage's steps/s
# (metrics/train.json) against the bare network's (bench/gpu_bare.py: the same network, device,
# precision and compile, no method, EMA or logging), the time of every stage and the metrics.
# Sized for under 8 minutes on one modern GPU.
#
#   bash bench/gpu_check.sh                 needs CUDA; stops at once, saying so, without it
#   bash bench/gpu_check.sh --cpu-dry-run   the same steps on the CPU with tiny settings, 2 processes
#                                           with gloo, no compile (tests/test_gpu_check.py runs it)
#
# It works in a copy of the project's files in a temporary folder (GPU_CHECK_DIR to keep it);
# MNIST is read from MNIST_ROOT (default ../shared/datasets/mnist/raw beside the project).
# PYTHON names the interpreter (default: python); GPU_CHECK_ONLY="bf16 fp32" runs only those variants.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
mode=${1:-gpu}
case "$mode" in
    gpu|--cpu-dry-run) ;;
    *) echo "usage: $0 [--cpu-dry-run]" >&2; exit 2 ;;
esac

if [ "$mode" = gpu ]; then
    if ! "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        echo "gpu_check: no CUDA device here (torch.cuda.is_available() is not True in $python): run it on a machine with a GPU," \
             "or with --cpu-dry-run for the same steps on the CPU" >&2
        exit 2
    fi
    gpus=$("$python" -c "import torch; print(torch.cuda.device_count())")
    base=(run.device=cuda)
    variants=("fp32:run.precision=fp32" "bf16:run.precision=bf16" "bf16-compile:run.precision=bf16 run.compile=true")
    if [ "$gpus" -ge 2 ]; then
        variants+=("bf16-nccl-2:run.precision=bf16 run.nproc_per_node=2 run.backend=nccl")
    fi
    bare_steps=(--steps 200 --warmup 20)
else
    gpus=0
    base=(run.device=cpu run.threads=1 data.max_train=256 data.max_test=100 training.batch_size=32 model.channels=8
          eval.nsamples=50 eval.batch_size=25 eval.reverse_steps=2 eval.classifier_epochs=1
          run.log_every=2 run.progress=never)
    variants=("fp32:run.precision=fp32" "bf16:run.precision=bf16" "fp32-gloo-2:run.precision=fp32 run.nproc_per_node=2 run.backend=gloo")
    bare_steps=(--steps 3 --warmup 1)
fi

mnist=${MNIST_ROOT:-$root/../shared/datasets/mnist/raw}
[ -d "$mnist" ] || { echo "gpu_check: no MNIST at $mnist (set MNIST_ROOT to the folder of its idx files)" >&2; exit 2; }
mnist=$(cd "$mnist" && pwd)
work=${GPU_CHECK_DIR:-$(mktemp -d)}
mkdir -p "$work"
for name in genlib stages configs plugin_modules; do cp -r "$root/$name" "$work/"; done
cp "$root/bench/gpu_bare.py" "$work/"
cd "$work"
export PYTHONPATH="$work" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

write_params() {  # configs/mnist.yaml with KEY=VALUE overrides (YAML values) as params.yaml
    "$python" - "$@" <<'EOF'
import sys, yaml
params = yaml.safe_load(open("configs/mnist.yaml"))
for item in sys.argv[1:]:
    key, value = item.split("=", 1)
    *path, last = key.split(".")
    node = params
    for part in path:
        node = node[part]
    node[last] = yaml.safe_load(value)
yaml.safe_dump(params, open("params.yaml", "w"), sort_keys=False)
EOF
}

timed() {  # STAGE: run stages/STAGE.py, print its seconds
    local start end
    start=$(date +%s.%N)
    "$python" "stages/$1.py" >"logs/$variant-$1.log" 2>&1 || { echo "gpu_check: stage $1 of $variant failed:" >&2; tail -20 "logs/$variant-$1.log" >&2; exit 1; }
    end=$(date +%s.%N)
    "$python" -c "print(f'{$end - $start:.1f}')"
}

mkdir -p logs
echo "gpu_check: $mode, $gpus CUDA device(s), torch $("$python" -c 'import torch; print(torch.__version__)'), in $work"
[ "$mode" = gpu ] && [ "$gpus" -lt 2 ] && echo "gpu_check: one GPU: the 2-process nccl run is left out"
rows=()
for entry in "${variants[@]}"; do
    variant=${entry%%:*}
    if [ -n "${GPU_CHECK_ONLY:-}" ] && [[ " $GPU_CHECK_ONLY " != *" $variant "* ]]; then continue; fi
    read -r -a over <<<"${entry#*:}"
    write_params "data.root=$mnist" "${base[@]}" "${over[@]}"
    times=""
    for stage in config prepare_data train generate evaluate; do
        if [ "$stage" = prepare_data ] && [ -f data/prepared/meta.json ]; then
            times+=" prepare_data=cached"  # the same images for every variant
            continue
        fi
        times+=" $stage=$(timed "$stage")s"
    done
    bare=$("$python" gpu_bare.py params.yaml "${bare_steps[@]}" | awk '{print $2}')
    rate=$("$python" -c "import json; m = json.load(open('metrics/train.json')); print(f\"{m['train_steps'] / m['train_time_s']:.2f}\")")
    ratio=$("$python" -c "print(f'{$rate / $bare:.2f}')")
    rows+=("$variant: train $rate steps/s, bare network $bare steps/s, ratio $ratio;$times")
    echo "${rows[-1]}"
    echo "  metrics: $("$python" -c "import json; m = json.load(open('metrics/eval.json')); print(', '.join(f'{k} {v:.4g}' for k, v in sorted(m.items()) if '/' not in k and '_sd' not in k))")"
done
echo "gpu_check: done (${#rows[@]} runs)"
