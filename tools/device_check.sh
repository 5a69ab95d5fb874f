#!/usr/bin/env bash
# The device check: every test that runs on a device (`pytest --device D -m device`), the generator bench
# (`python -m core bench`: EG3D's FFHQ-512 sr2d at neural rendering 128 with 48+48 samples, Mimic3D's direct3d at 512
# and the student at 512, batch 1 and 16, fp32 and fp16, each next to the reference operators), the training
# bench of the bundled model's presets and the viewer backend's frame times, all written under one folder.
#
#   tools/device_check.sh [OUTDIR] [DEVICE] [PARTS]
#
# Defaults: device_check, cuda, and PARTS=tests,bench,train,viewer (a comma list of those; PYTHON=... picks the
# interpreter, PYTEST_ARGS=... adds pytest options, PYTEST_K=... a -k expression, VIEWER_PKL=... the model of the viewer timing).
#
# Exit status 0 when every part passed; the folder holds environment.txt, pytest.log (+ pytest.xml), bench.json and
# bench.log, train_bench_*.json, viewer_backend.txt and summary.txt (one line per part).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-device_check}
DEV=${2:-cuda}
PARTS=",${3:-tests,bench,train,viewer},"
want() { [[ $PARTS == *",$1,"* ]]; }
PY=${PYTHON:-python3}
HALF=fp16; [ "${DEV%%:*}" = cpu ] && HALF=bf16
mkdir -p "$OUT"
: > "$OUT/summary.txt"

part() {  # part NAME LOGFILE COMMAND...: run one part, record its status and time
    local name=$1 log=$2; shift 2
    local t0=$SECONDS
    echo "== $name: $*" | tee -a "$OUT/summary.txt"
    "$@" > "$log" 2>&1
    local rc=$?
    echo "   $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
    tail -n 3 "$log" | sed 's/^/   | /'
    [ $rc -eq 0 ] || status=1
}
status=0

"$PY" - > "$OUT/environment.txt" 2>&1 <<'PYEOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs")
PYEOF
cat "$OUT/environment.txt"

# the modules that hold device tests (the viewer's window tests need a display and its GL libraries, not a device)
want tests && part tests "$OUT/pytest.log" "$PY" -m pytest -q -p no:cacheprovider --device "$DEV" -m device \
    --junitxml="$OUT/pytest.xml" tests/core tests/training tests/app/test_model_backend.py \
    ${PYTEST_K:+-k "$PYTEST_K"} ${PYTEST_ARGS:-}
want bench && part bench "$OUT/bench.log" "$PY" -m core bench --device "$DEV" --models ffhq512,mimic3d512 --nrr 128 \
    --batches 1,16 --sampling std --precision "fp32,$HALF" --reference-batches 1,16 --direct3d-res 512 \
    --direct3d-batches 1 --students ffhq512 --student-batches 1,16 --repeats 5 --warmup 2 --out "$OUT/bench.json"
want train && for preset in mimic3d-stage1-synth-tiny mimic3d-stage2-synth-tiny; do
    part "train-bench $preset" "$OUT/train_bench_$preset.log" "$PY" -m training bench --config "$preset" \
        --device "$DEV" --batch-gpu 32 --out "$OUT/train_bench_$preset.json"
done
want viewer && part viewer-backend "$OUT/viewer_backend.txt" "$PY" -m app.measure --pkl "${VIEWER_PKL:-assets/default.pkl}" --branches-only \
    --device "$DEV"
echo "device check: $([ $status -eq 0 ] && echo passed || echo FAILED) (details in $OUT/)" | tee -a "$OUT/summary.txt"
exit $status
