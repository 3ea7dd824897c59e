/*
 * media: pictures and video files; the only module that includes libav*.
 *
 * - the MP4 writer: H.264 (libx264) in yuv420p at a constant frame rate,
 *   muxed with `movflags +faststart`. The caller draws each frame straight
 *   into the encoder's buffer (media_writer_frame, then media_writer_push),
 *   so no frame is copied on its way in. The same frames give the same
 *   bytes on any machine with the same libx264 build: the thread count is a
 *   constant and nothing time- or version-dependent is written.
 * - drawing on a yuv420p frame: solid and blended rectangles and a 5x7
 *   bitmap font, in limited-range BT.709 (what the writer signals).
 *
 * Threads: a writer belongs to one thread at a time (libx264 runs its own
 * MEDIA_X264_THREADS helper threads inside it); different writers run in
 * parallel. Drawing functions are pure and reentrant.
 * Ownership: media_writer_new makes the writer; media_writer_free releases
 * it and closes the file (whether or not it was finished). The file is the
 * caller's: the writer never fsyncs, renames or removes it.
 */
#ifndef PADDOCK_MEDIA_H
#define PADDOCK_MEDIA_H

#include "../core/core.h"

/* ------------------------------------------------------------ encoding */

/* Output frame rate of every video (API.md section 4). */
#define MEDIA_FPS 24
/*
 * x264 preset. ultrafast: the sandbox exists for CI and demos, where wall
 * time matters and compression does not: 5 s of 720p encodes in half the
 * time veryfast needs (PERFORMANCE.md), and the stream is Constrained
 * Baseline (no CABAC, no B-frames), which every player decodes. The cost is
 * larger files. A benchmark passes the same value to `ffmpeg -preset`.
 */
#define MEDIA_X264_PRESET "ultrafast"
/* x264's default quality (`-crf`); stated so a benchmark can match it. */
#define MEDIA_X264_CRF 23
/*
 * libx264 threads per writer (`-threads`). A constant, not "auto": x264's
 * output is deterministic for a given thread count only, so a count that
 * followed the CPU would change the bytes from machine to machine. Two,
 * because the worker pool already runs one job per core; two lets the
 * encoder overlap with drawing without oversubscribing the machine.
 */
#define MEDIA_X264_THREADS 2
/* Largest side the writer accepts (the API's largest is 2208). */
#define MEDIA_MAX_SIDE 4096

/* A yuv420p picture: full-size Y plane, U and V at half width and height
 * (rounded up). Borrowed: it points into someone else's buffer. */
struct media_frame {
    uint8_t *data[3];
    int linesize[3];
    int width, height; /* luma size in pixels */
};

struct media_writer;

/*
 * Create the file at `path` and an H.264 encoder for width x height (even,
 * 16..MEDIA_MAX_SIDE) at `fps` frames per second. 0, or ERR_IO (the file
 * cannot be created), ERR_INVALID_PARAMETER (bad size or rate), ERR_ALGO
 * (the encoder refused), with the detail in *err.
 */
int media_writer_new(const char *path, int width, int height, int fps,
                     struct media_writer **out, struct errmsg *err);
/*
 * The next frame to draw: its planes, writable, holding an unspecified
 * picture (draw every pixel). Valid until media_writer_push. 0 or ERR_ALGO.
 */
int media_writer_frame(struct media_writer *w, struct media_frame *f,
                       struct errmsg *err);
/* Encode the frame last returned by media_writer_frame and write whatever
 * packets are ready. 0, ERR_IO or ERR_ALGO. */
int media_writer_push(struct media_writer *w, struct errmsg *err);
/*
 * Flush the encoder, write the trailer and move the index (moov) before the
 * media data (mdat). The file then lasts exactly frames/fps seconds.
 * 0, ERR_IO or ERR_ALGO. The writer can only be freed afterwards.
 */
int media_writer_finish(struct media_writer *w, struct errmsg *err);
/* Frames pushed so far. */
int64_t media_writer_frames(const struct media_writer *w);
/* Release everything and close the file (left incomplete when not
 * finished; the caller removes it). NULL is fine. */
void media_writer_free(struct media_writer *w);

/* ------------------------------------------------------------- drawing */

/* A colour in limited-range BT.709 YCbCr. */
struct media_yuv {
    uint8_t y, u, v;
};

/* Convert 8-bit full-range RGB to limited-range BT.709 (integer math, the
 * same result everywhere). */
struct media_yuv media_rgb(uint8_t r, uint8_t g, uint8_t b);
/* Fill a rectangle (clipped to the frame). Chroma covers every chroma
 * sample the rectangle touches. */
void media_fill_rect(const struct media_frame *f, int x, int y, int w, int h,
                     struct media_yuv c);
/* Blend `c` over a rectangle with opacity alpha/256 (0..256). */
void media_blend_rect(const struct media_frame *f, int x, int y, int w, int h,
                      struct media_yuv c, int alpha);
/*
 * Draw `text` in the built-in 5x7 font, each font pixel a scale x scale
 * square, top-left at (x, y). Knows A-Z (lower case is drawn upper case),
 * 0-9, space and . , : ; - + _ / ! ? % # ( ) ' " = *; anything else is
 * drawn as '?'. Clipped to the frame.
 */
void media_draw_text(const struct media_frame *f, int x, int y, int scale,
                     const char *text, struct media_yuv c);
/* Width and height in pixels of media_draw_text's output. */
int media_text_width(const char *text, int scale);
int media_text_height(int scale);
/*
 * The visible "generated" mark: `text` in white on a translucent dark box
 * in the bottom-right corner, sized from the frame's short side. Touches
 * only the rectangle media_watermark_box reports.
 */
void media_draw_watermark(const struct media_frame *f, const char *text);
/* The rectangle media_draw_watermark covers on a width x height frame. */
void media_watermark_box(int width, int height, const char *text, int *x,
                         int *y, int *w, int *h);

#endif
