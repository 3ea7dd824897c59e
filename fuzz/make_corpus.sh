#!/bin/sh
# Seed corpus for fuzz_probe, made with the ffmpeg CLI (nothing binary is
# committed): one small file of every kind the readers take, a few they
# must refuse, and cut-short copies. Usage: fuzz/make_corpus.sh DIR
set -eu
out=${1:?usage: make_corpus.sh DIR}
mkdir -p "$out"
ff() { ffmpeg -nostdin -v error -y "$@"; }
src="testsrc2=size=64x48:rate=10"
ff -f lavfi -i "$src" -frames:v 1 "$out/pic.jpg"
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt gray "$out/gray.jpg"
ff -f lavfi -i "$src" -frames:v 1 "$out/pic.png"
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt rgba "$out/rgba.png"
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt pal8 "$out/pal.png"
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt monob "$out/mono.png"
ff -f lavfi -i "$src" -frames:v 1 "$out/lossy.webp"
ff -f lavfi -i "$src" -frames:v 1 -lossless 1 "$out/lossless.webp"
ff -f lavfi -i "$src" -frames:v 1 -pix_fmt yuva420p "$out/alpha.webp"
ff -f lavfi -i "$src" -t 0.3 -f apng "$out/anim.png"
ff -f lavfi -i "$src" -frames:v 1 "$out/pic.gif"
ff -f lavfi -i "$src" -f lavfi -i "sine=frequency=440:sample_rate=8000" \
    -t 0.5 -c:v libx264 -preset ultrafast -c:a aac -b:a 16k -shortest \
    "$out/av.mp4"
ff -i "$out/av.mp4" -c copy -movflags +faststart "$out/fast.mp4"
ff -i "$out/av.mp4" -c copy -f mov "$out/av.mov"
ff -f lavfi -i "$src" -t 0.5 -c:v mpeg4 "$out/mpeg4.mp4"
ff -f lavfi -i "sine=frequency=440:sample_rate=8000" -t 0.5 -c:a aac \
    -b:a 16k "$out/audio.m4a"
ff -f lavfi -i "$src" -t 0.5 -c:v libx264 -preset ultrafast -movflags \
    +frag_keyframe+empty_moov "$out/frag.mp4"
printf 'not a picture, not a video\n' >"$out/text.txt"
# Cut short: the header of each, half of each.
for f in "$out"/av.mp4 "$out"/fast.mp4 "$out"/pic.png "$out"/pic.jpg; do
    n=$(wc -c <"$f")
    head -c $((n / 2)) "$f" >"$f.half"
    head -c 200 "$f" >"$f.head"
done
