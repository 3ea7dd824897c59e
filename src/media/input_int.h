/*
 * Private to src/media (not part of the module's interface): what the
 * image reader (input.c) and the video reader (video.c) share: the byte
 * source behind our own AVIOContext, the demuxer over it, the scaler that
 * fits frames to the output, decoder set-up and the size checks.
 */
#ifndef PADDOCK_MEDIA_INPUT_INT_H
#define PADDOCK_MEDIA_INPUT_INT_H

#include "media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include <stdbool.h>
#include <stdint.h>

/* Threads decoding an input video: the encoder leaves part of a second
 * core idle, and decoding fills it. A probe decodes two frames only, with
 * one: frame threads cost more to set up than they save there (a 720p
 * H.264 probe took 100 ms with two, 18 ms with one). */
#define VIDEO_DECODE_THREADS 2
#define PROBE_DECODE_THREADS 1
/* libavformat's read buffer. */
#define IO_BUFFER 32768
/* Samples one decoded audio frame may turn into (10 s): a hostile file
 * cannot make the resampler's output unbounded. */
#define AUDIO_FRAME_MAX (10 * MEDIA_AUDIO_RATE)

/* What AVIOContext reads: an open file or a buffer, with a position. */
struct src_io {
    int fd; /* the file, or -1 */
    const uint8_t *mem;
    int64_t size, pos;
};

/* A demuxer over a source. */
struct demux {
    struct src_io io;
    AVIOContext *pb;
    AVFormatContext *fmt;
};

/* A scaler and what it was made for. */
struct scaler {
    struct SwsContext *sws;
    int src_w, src_h, dst_w, dst_h;
    enum AVPixelFormat src_fmt;
    int src_range, src_space;
};

void media__demux_close(struct demux *d);

/* Open a video: probe the content (the name plays no part) and read the
 * headers with the QuickTime demuxer, or fail. */
int media__demux_open(struct demux *d, const struct media_src *src,
                      const char *name, struct errmsg *err);

/* Sides and pixel count small enough to decode at all. */
int media__check_decodable_size(int w, int h, const char *name,
                                const char *what, struct errmsg *err);

/* Whether swscale reads frame f's pixel format. */
int media__check_scalable(const AVFrame *f, const char *name,
                          struct errmsg *err);

void media__scaler_fini(struct scaler *s);

/*
 * Scale `in` to cover out's size and centre-crop it, into out (yuv420p,
 * limited-range BT.709). The crop is applied to a new reference of the
 * frame; the scaler is made again only when a size or format changes.
 */
int media__fit_frame(struct scaler *s, const AVFrame *in, int flags,
                     const struct media_frame *out, struct errmsg *err);

bool media__fit_size_ok(int w, int h);

/* A decoder for `par` bounded to our sizes, bit-exact (its output does
 * not depend on the thread count). */
int media__open_decoder(const AVCodecParameters *par, int threads,
                        AVCodecContext **out, const char *name,
                        struct errmsg *err);

#endif
