/*
 * media: pictures, audio and video files; the only module that includes
 * libav*.
 *
 * - reading inputs: an image (JPEG, PNG, WEBP) or a video (MP4/MOV) is
 *   recognised by its content, never its name (an image's magic bytes
 *   must be what task_image_sniff says); every size is checked before
 *   anything is allocated for it; a file that is not what it should be is
 *   ERR_UNSUPPORTED_FILE_FORMAT, never a crash. media_probe_* only
 *   measures (the fuzz target's entry) into a struct task_media_info: the
 *   API's limits are task/'s to judge (task_media_check), not the codec's.
 *   media_image_* decodes a still once and fits it to any size,
 *   media_video_* reads a video's frames and audio in order. Decoders and
 * scalers run bit-exact, so an input gives the same pixels on any machine. Not
 * handled: EXIF orientation and a video's rotation matrix (a phone's portrait
 * clip comes out as stored), animation (an APNG shows its still image, an
 * animated WEBP is refused), alpha (dropped).
 * - the MP4 writer: H.264 (libx264) in yuv420p at a constant frame rate
 *   plus an AAC track (FFmpeg's native encoder, stereo 48 kHz) of the same
 *   length, muxed with `movflags +faststart`. The caller draws each frame
 *   straight into the encoder's buffer (media_writer_frame, then
 *   media_writer_push), so no frame is copied on its way in. The same
 *   frames give the same video bytes on any machine with the same libx264
 *   build: the thread count is a constant and nothing time- or
 *   version-dependent is written. The AAC encoder computes in floating
 *   point with CPU-specific DSP code: the same samples give the same bytes
 *   on a given machine and libavcodec build.
 * - drawing on a yuv420p frame: solid and blended rectangles, a 5x7 bitmap
 *   font, windows, plain and graded copies, cross-fades and a magnified
 *   view, in limited-range BT.709 (what the writer signals); integer math
 *   with SIMD where it pays, the same bytes with or without it.
 *
 * Threads: a writer, image or video belongs to one thread at a time
 * (libx264 runs its own MEDIA_X264_THREADS helper threads inside a writer);
 * different objects run in parallel. Drawing functions are pure and
 * reentrant. The first use of the module routes libav's log to log/ and
 * caps any single libav allocation at MEDIA_MAX_ALLOC, for the process.
 * Ownership: every _new/_open has its _free, which accepts NULL and closes
 * whatever file it holds. Output files are the caller's: the writer never
 * fsyncs, renames or removes them. A struct media_src is borrowed by
 * whatever is opened from it, until that is freed.
 */
#ifndef PADDOCK_MEDIA_H
#define PADDOCK_MEDIA_H

#include "../core/core.h"
#include "../task/task.h"

/* ------------------------------------------------------------ encoding */

/* Output frame rate of every video (docs/api.md s.4). */
#define MEDIA_FPS 24
/*
 * x264 preset. ultrafast: the sandbox exists for CI and demos, where wall
 * time matters and compression does not: 5 s of 720p encodes in half the
 * time veryfast needs (bench/README.md, "Design measurements"), and the
 * stream is Constrained Baseline (no CABAC, no B-frames), which every
 * player decodes. The cost is larger files. A benchmark passes the same
 * value to `ffmpeg -preset`.
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
/* The audio track of every output: 48 kHz stereo AAC-LC. 48000 is a
 * multiple of MEDIA_FPS, so a frame lasts a whole number of samples
 * (2000). 96 kb/s rather than ffmpeg's 128: the encoder's time grows with
 * the bit rate (a quarter less here), and 96 is plenty for stereo AAC-LC. */
#define MEDIA_AUDIO_RATE     48000
#define MEDIA_AUDIO_CHANNELS 2
#define MEDIA_AAC_BITRATE    96000
/*
 * The native AAC encoder's search (`-aac_coder`): "fast" rather than its
 * default "twoloop". On the sandbox's chord twoloop took half the CPU time
 * libx264 ultrafast spent on the 720p video beside it, fast a tenth, and
 * the difference is not audible in a soft chord or a phone recording.
 */
#define MEDIA_AAC_CODER "fast"

/* A yuv420p picture: full-size Y plane, U and V at half width and height
 * (rounded up). Borrowed: it points into someone else's buffer. */
struct media_frame {
    uint8_t *data[3];
    int linesize[3];
    int width, height; /* luma size in pixels */
};

struct media_writer;

/*
 * Create the file at `path` with an H.264 encoder for width x height (even,
 * 16..MEDIA_MAX_SIDE) at `fps` frames per second (a divisor of
 * MEDIA_AUDIO_RATE) and an AAC encoder. 0, or ERR_IO (the file cannot be
 * created), ERR_INVALID_PARAMETER (bad size or rate), ERR_ALGO (an encoder
 * refused), with the detail in *err.
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
 * Append `n` sample pairs to the audio track: signed 16-bit, interleaved
 * left, right, at MEDIA_AUDIO_RATE. The track never runs ahead of the
 * video: of what is pushed, the writer takes samples up to the end of the
 * frames pushed so far and drops the rest, so push a frame's audio after
 * the frame. 0, ERR_IO or ERR_ALGO.
 */
int media_writer_audio(struct media_writer *w, const int16_t *pcm, int n,
                       struct errmsg *err);
/*
 * Pad the audio with silence to the video's length, flush both encoders,
 * write the trailer and move the index (moov) before the media data
 * (mdat). Both tracks then last exactly frames/fps seconds. 0, ERR_IO or
 * ERR_ALGO. The writer can only be freed afterwards.
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

/* An owned yuv420p picture in the caller's storage; `f` describes it. */
struct media_picture {
    struct media_frame f;
    uint8_t *mem;
};

/* Allocate a width x height picture (sides 2..MEDIA_MAX_SIDE, even),
 * contents unspecified; aborts on exhaustion like xmalloc. */
void media_picture_init(struct media_picture *p, int width, int height);
/* Release the planes; the struct may be reused. A zeroed struct is fine. */
void media_picture_fini(struct media_picture *p);
/* The w x h rectangle of `f` at (x, y) as a frame of its own (borrowed,
 * same planes). x and y are rounded down to even, and the rectangle is
 * clipped to the frame. */
struct media_frame media_frame_window(const struct media_frame *f, int x, int y,
                                      int w, int h);
/* Copy src into dst; both are cut to the smaller width and height. */
void media_copy(const struct media_frame *dst, const struct media_frame *src);
/* A linear grade of one plane: values move away from `mid` by gain/64
 * (0..128: flat to doubled), shift by `offset`, and stay in [lo, hi]. */
struct media_grade {
    int gain, offset;
    uint8_t mid, lo, hi;
};
/* Copy src into dst graded, plane by plane (Y, U, V):
 * dst = clamp(mid + floor(((src - mid) * gain + 32) / 64) + offset). */
void media_copy_grade(const struct media_frame *dst,
                      const struct media_frame *src,
                      const struct media_grade grade[3]);
/* Cross-fade: dst = a + (b - a) * alpha / 256, alpha 0..256; the three
 * frames are cut to the smallest. dst may be a or b. */
void media_mix(const struct media_frame *dst, const struct media_frame *a,
               const struct media_frame *b, int alpha);
/*
 * A magnified view: dst pixel (x, y) shows src at (x0 + x * step,
 * y0 + y * step) in luma pixels times 65536 (chroma at half), sampled
 * bilinearly, pixel centres aligned. step <= 65536 (magnify, never
 * shrink); the viewed region must lie inside src. With step 65536 and
 * whole-pixel x0, y0 (even) it is an exact copy.
 */
void media_view(const struct media_frame *dst, const struct media_frame *src,
                int64_t x0, int64_t y0, int64_t step);

/* -------------------------------------------------------------- inputs */

/*
 * Largest side and pixel count of an input picture or video frame that is
 * decoded at all. The API's own limits (task_media_check) are tighter and
 * report the measured size; these keep the memory of decoding bounded
 * (8K UHD fits; 36 MP of 16-bit RGBA is 288 MB).
 */
#define MEDIA_MAX_INPUT_SIDE   8192
#define MEDIA_MAX_INPUT_PIXELS 36000000
/* Any single allocation inside libav, for the whole process. */
#define MEDIA_MAX_ALLOC (384u << 20)
/* Audio channels of an input that are mixed down to stereo. */
#define MEDIA_MAX_INPUT_CHANNELS 16

/* Where an input's bytes are: a regular file, or a buffer (tests, the
 * fuzzer). Borrowed by whatever is opened from it. */
struct media_src {
    const char *path;    /* the file, or NULL to read `data` */
    const uint8_t *data; /* `size` bytes */
    size_t size;
};

/*
 * Measure the image or video in `src`, decided by its content (a name or
 * an extension means nothing). `name` ("media[0]") starts every message.
 * An image is decoded whole and a video's first frame is, so a file that
 * passes can be rendered. 0, or ERR_UNSUPPORTED_FILE_FORMAT (not a
 * JPEG/PNG/WEBP image, not an MP4/MOV video with a decodable video track,
 * truncated, garbage), ERR_INVALID_PARAMETER (larger than
 * MEDIA_MAX_INPUT_*, with the measured size), ERR_INPUT_DOWNLOAD_FAILED (an
 * image over LIMIT_IMAGE_BYTES, a video over LIMIT_VIDEO_BYTES) or ERR_IO
 * (the file cannot be read).
 */
int media_probe(const struct media_src *src, enum task_media_kind want,
                const char *name, struct task_media_info *info,
                struct errmsg *err);
/* media_probe of a file, and of a buffer. */
int media_probe_file(const char *path, enum task_media_kind want,
                     const char *name, struct task_media_info *info,
                     struct errmsg *err);
int media_probe_mem(const uint8_t *data, size_t size, enum task_media_kind want,
                    const char *name, struct task_media_info *info,
                    struct errmsg *err);

struct media_image;

/* Decode the image in `src` (media_probe's checks and errors). */
int media_image_open(const struct media_src *src, const char *name,
                     struct media_image **out, struct errmsg *err);
/* Its measurements. */
const struct task_media_info *media_image_info(const struct media_image *img);
/*
 * The image scaled to cover width x height (even, 2..MEDIA_MAX_SIDE) and
 * centre-cropped to it, into *out, a new picture (media_picture_fini).
 * 0 or ERR_ALGO; *out is untouched on failure.
 */
int media_image_fit(const struct media_image *img, int width, int height,
                    struct media_picture *out, struct errmsg *err);
/* NULL is fine. */
void media_image_free(struct media_image *img);

struct media_video;

/* Open the video in `src` and decode its first frame (media_probe's checks
 * and errors). */
int media_video_open(const struct media_src *src, const char *name,
                     struct media_video **out, struct errmsg *err);
/* Its measurements. */
const struct task_media_info *media_video_info(const struct media_video *v);
/*
 * The picture on screen `num`/`den` seconds after the first frame, fitted
 * to width x height like media_image_fit: the last frame that starts at or
 * before then (past the end, the last frame). Times must not decrease from
 * call to call. Each input frame is decoded once and scaled at most once
 * per size. *out is borrowed until the next call. 0, or
 * ERR_UNSUPPORTED_FILE_FORMAT (decoding failed), ERR_ALGO.
 */
int media_video_frame_at(struct media_video *v, int64_t num, int64_t den,
                         int width, int height, struct media_frame *out,
                         struct errmsg *err);
/*
 * The next `n` sample pairs of the audio track, from where the last call
 * stopped, as media_writer_audio takes them (s16, left/right interleaved,
 * MEDIA_AUDIO_RATE; other layouts mixed to stereo). *got < n only at the
 * end of the track (0 at once without one). 0, or
 * ERR_UNSUPPORTED_FILE_FORMAT, ERR_ALGO.
 */
int media_video_audio(struct media_video *v, int16_t *pcm, int n, int *got,
                      struct errmsg *err);
/* NULL is fine. */
void media_video_free(struct media_video *v);

#endif
