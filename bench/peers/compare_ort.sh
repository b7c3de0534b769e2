#!/bin/bash
# ../shared/peers/compare.sh plus our int8 run: ORT fp32 and dynamic int8 (onnxruntime-node) alternated with
# `infer --json` and `infer --json --quantized`, ROUNDS times, one sitting. Run from the project root after
# `dotnet build -c Release bench/Sharpformer.Bench` and the peers' setup.sh (which fills DIR with the ONNX models).
# Usage: bench/peers/compare_ort.sh [DIR] [ROUNDS] [SHAPES]   e.g. bench/peers/compare_ort.sh /work/peers-cache 3 1x128,8x128
set -u
DIR=${1:-peers-cache}; DIR=$(cd "$DIR" && pwd); ROUNDS=${2:-3}; SHAPES=${3:-1x128,8x128,32x128,1x512}
PEERS=${SHARPFORMER_PEERS:-../shared/peers}
export ORT_SCRATCH=$DIR NODE_PATH=$DIR/node_modules
B=$(ls bench/*/bin/Release/net*/Sharpformer.Bench.dll | head -1)
lscpu | grep "Model name"; git log -1 --format=%h
for r in $(seq 1 "$ROUNDS"); do
  for shape in ${SHAPES//,/ }; do b=${shape%x*}; s=${shape#*x}
    for m in base distil; do for q in "" _int8; do
      node "$PEERS/ort_bench.js" --model "$DIR/bert_${m}_op14$q.onnx" --threads 2 --batch "$b" --seq "$s" --runs 5 --warmup 2 \
        --label "ort${q}_${m}_$shape" | tail -1
    done; done
  done
  dotnet "$B" infer --json --shapes "$SHAPES"
  dotnet "$B" infer --json --quantized --shapes "$SHAPES"
done
