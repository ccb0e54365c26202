#!/usr/bin/env bash
# Training that never stops: start this in the first minutes of every session.
#
#   bash scripts/train_background.sh start [MINUTES]   # default 150: ends before a 180-min session
#   SECOND=configs/experiments/NAME.yaml bash scripts/train_background.sh start   # an experiment
#   bash scripts/train_background.sh status            # steps, speed, latest validation
#   bash scripts/train_background.sh stop              # SIGTERM: both runs checkpoint and exit,
#                                                      # then their checkpoints are slimmed
#
# It resumes, nice'd, one thread each (two threads on two busy cores ran 6x slower than one):
#   * the restoration run, configs/nafnet-fast-gopro.yaml into checkpoints/nafnet-fast-gopro
#     (warm-started from the shipped nafnet-fast weights the first time): to the end of its
#     schedule, or, when it has reached it, RESTORE_STEPS (default 40000) further (a warm
#     restart of its cosine schedule, as for the motion networks; an experiment alike);
#   * in the second slot, one motion network, whichever of motion-single / motion-frames has
#     fewer steps (SECOND=motion-single or SECOND=motion-frames picks one): to the end of its
#     schedule, or, when it has reached it, MOTION_STEPS (default 20000) further (a warm
#     restart of its cosine schedule);
#   * or, with SECOND=configs/experiments/NAME.yaml, a controlled recipe experiment instead:
#     the first time, its run folder (the config's `out`) is forked from the restoration run's
#     state (python -m unblur.train.checkpoint fork), so both go on from the same step, side
#     by side for the same wall time; compare them with benchmarks/ship_gate.py.
# Each run checkpoints every 500 steps, and on SIGTERM after the current step; `timeout` sends
# that SIGTERM when MINUTES are up. Logs: runs/background/*.log. `stop` then slims the
# checkpoints to their EMA weights and state (python -m unblur.train.checkpoint slim: a third of
# the size; the next session resumes with a warm restart), so that the one commit of training
# state a session stays small (git count-objects -vH). Ship new weights only through
# benchmarks/ship_gate.py; when it ships a run's EMA weights, slim that run's checkpoint once
# more to a reference to them, so the commit does not carry the same weights twice:
#   python -m unblur.train.checkpoint slim checkpoints/RUN/ckpt --same-as src/unblur/models/weights/MODEL.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
dir=runs/background
mkdir -p "$dir"
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=${PYTHON:-.venv/bin/python}

step_of() {  # the step of a run's last checkpoint, 0 if none
    local f=$1/ckpt/last.json
    [ -f "$f" ] && "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$f" \
        || echo 0
}

target_of() {  # the schedule's length if the checkpoint has not reached it, else step + $2
    "$py" - "$1/ckpt/last.json" "$2" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
total = (state.get("scheduler") or {}).get("total_steps") or 0
print(total if total > state["step"] else state["step"] + int(sys.argv[2]))
PY
}

launch() {  # name minutes command...
    local name=$1 minutes=$2
    shift 2
    if [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
        echo "train_background: $name is already running (pid $(cat "$dir/$name.pid"))"
        return
    fi
    OMP_NUM_THREADS=1 nohup timeout -s TERM -k 10m "${minutes}m" nice -n 10 "$@" \
        >>"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    echo "train_background: started $name (pid $!, ${minutes} min): $*"
}

case ${1:-start} in
start)
    minutes=${2:-150}
    resume=()
    if [ -f checkpoints/nafnet-fast-gopro/ckpt/last.json ]; then
        resume=(--resume --steps "$(target_of checkpoints/nafnet-fast-gopro "${RESTORE_STEPS:-40000}")")
    fi
    launch restore "$minutes" "$py" -m unblur train configs/nafnet-fast-gopro.yaml "${resume[@]}" --quiet
    second=${SECOND:-}
    case $second in
    *.yaml)
        out=$("$py" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['out'])" "$second")
        [ -f "$out/ckpt/last.safetensors" ] ||
            "$py" -m unblur.train.checkpoint fork checkpoints/nafnet-fast-gopro "$out"
        launch second "$minutes" "$py" -m unblur train "$second" --resume \
            --steps "$(target_of "$out" "${RESTORE_STEPS:-40000}")" --quiet
        ;;
    motion-single | motion-frames | "")
        name=$second
        if [ -z "$name" ]; then
            single=$(step_of checkpoints/motion-single)
            frames=$(step_of checkpoints/motion-frames)
            if [ "$single" -le "$frames" ]; then name=motion-single; else name=motion-frames; fi
        fi
        launch second "$minutes" "$py" -m unblur train "configs/$name.yaml" --resume \
            --out "checkpoints/$name" \
            --steps "$(target_of "checkpoints/$name" "${MOTION_STEPS:-20000}")" --quiet
        ;;
    *)
        echo "train_background: SECOND is motion-single, motion-frames or an experiment's .yaml" >&2
        exit 2
        ;;
    esac
    ;;
stop)
    # every run with a pid file here: restore, second, and any other started by hand beside
    # them (e.g. a third run, runs/background/third.pid)
    for file in "$dir"/*.pid; do
        [ -f "$file" ] || continue
        name=$(basename "$file" .pid)
        pid=$(cat "$file")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            echo "train_background: asked $name (pid $pid) to stop"
        fi
    done
    for file in "$dir"/*.pid; do
        [ -f "$file" ] || continue
        name=$(basename "$file" .pid)
        pid=$(cat "$file")
        while kill -0 "$pid" 2>/dev/null; do sleep 2; done
        rm -f "$dir/$name.pid"
        echo "train_background: $name stopped"
    done
    for run in checkpoints/*/; do
        run=${run%/}
        [ -f "$run/ckpt/last.json" ] || continue
        # only what trained this session: a committed checkpoint that did not change stays as
        # is (a new, untracked one is slimmed; outside git everything is)
        if git rev-parse --git-dir >/dev/null 2>&1 &&
            [ -z "$(git status --porcelain -- "$run/ckpt")" ]; then
            continue
        fi
        grep -q '"slim": true' "$run/ckpt/last.json" || "$py" -m unblur.train.checkpoint slim "$run/ckpt"
    done
    ;;
status)
    for run in checkpoints/nafnet-fast-gopro checkpoints/motion-single checkpoints/motion-frames; do
        [ -f "$run/log.csv" ] || continue
        echo "$run: checkpoint step $(step_of "$run"); log: $(tail -n 1 "$run/log.csv")"
    done
    for name in restore second $(cd "$dir" && ls -- *.pid 2>/dev/null | sed 's/\.pid$//' |
        grep -vx -e restore -e second); do
        if [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
            echo "$name: running (pid $(cat "$dir/$name.pid"))"
        else
            echo "$name: not running"
        fi
    done
    ;;
*)
    echo "usage: $0 start [MINUTES] | status | stop" >&2
    exit 2
    ;;
esac
