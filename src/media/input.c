/*
 * Reading inputs: images and videos recognised by content, measured before
 * anything is allocated for them, decoded once, fitted to the output size;
 * a video's frames by timestamp and its audio as the writer takes it.
 * Bytes come through our own AVIOContext (a file or a buffer): no URL, no
 * file name and no protocol ever reaches libavformat.
 */
#include "av.h"
#include "media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ------------------------------------------------------------ byte source */

/* What AVIOContext reads: an open file or a buffer, with a position. */
struct src_io {
    int fd; /* the file, or -1 */
    const uint8_t *mem;
    int64_t size, pos;
};

static int io_read(void *opaque, uint8_t *buf, int n)
{
    struct src_io *io = opaque;
    if (io->pos >= io->size)
        return AVERROR_EOF;
    if (n > io->size - io->pos)
        n = (int)(io->size - io->pos);
    if (io->fd < 0) {
        memcpy(buf, io->mem + io->pos, (size_t)n);
    } else {
        ssize_t got;
        do {
            got = pread(io->fd, buf, (size_t)n, io->pos);
        } while (got < 0 && errno == EINTR);
        if (got < 0)
            return AVERROR(errno);
        if (got == 0)
            return AVERROR_EOF; /* shrank under us */
        n = (int)got;
    }
    io->pos += n;
    return n;
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
    struct src_io *io = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return io->size;
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = io->pos;
        break;
    case SEEK_END:
        base = io->size;
        break;
    default:
        return AVERROR(EINVAL);
    }
    /* Anywhere from 0 to just past the end; reads there find EOF. */
    if (off < -base || off > io->size - base + 1)
        return AVERROR(EINVAL);
    io->pos = base + off;
    return io->pos;
}

/* Open `src` for reading: a regular file of at most `max` bytes, or the
 * buffer. 0, ERR_IO or ERR_INPUT_DOWNLOAD_FAILED. */
static int src_open(struct src_io *io, const struct media_src *src, int64_t max,
                    const char *name, struct errmsg *err)
{
    memset(io, 0, sizeof(*io));
    io->fd = -1;
    if (!src->path) {
        io->mem = src->data;
        io->size = src->data ? (int64_t)src->size : 0;
    } else {
        struct stat st;
        io->fd = open(src->path, O_RDONLY | O_CLOEXEC);
        if (io->fd < 0 || fstat(io->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            int e = io->fd < 0 ? errno : EINVAL;
            if (io->fd >= 0)
                close(io->fd);
            io->fd = -1;
            return errmsg_set(err, ERR_IO, "%s: cannot read %s: %s", name,
                              src->path, strerror(e));
        }
        io->size = st.st_size;
    }
    if (io->size > max) {
        if (io->fd >= 0)
            close(io->fd);
        io->fd = -1;
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                          "%s is %lld bytes: the limit is %lld", name,
                          (long long)io->size, (long long)max);
    }
    return 0;
}

static void src_close(struct src_io *io)
{
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
}

/* Read the whole source into a new buffer with libav's zeroed padding. */
static int src_slurp(struct src_io *io, uint8_t **out, const char *name,
                     struct errmsg *err)
{
    size_t n = (size_t)io->size;
    /* libav's allocator: the buffer becomes the decoder's packet. */
    uint8_t *d = av_malloc(n + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!d)
        return errmsg_set(err, ERR_NOMEM, "%s: no memory for %zu bytes", name,
                          n);
    memset(d + n, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    for (size_t at = 0; at < n;) {
        int chunk = n - at > (1u << 30) ? 1 << 30 : (int)(n - at);
        int got = io_read(io, d + at, chunk);
        if (got <= 0) {
            av_free(d);
            return errmsg_set(err, ERR_IO, "%s: reading failed: %s", name,
                              got < 0 ? av_err2str(got) : "end of file");
        }
        at += (size_t)got;
    }
    *out = d;
    return 0;
}

/* libavformat must open nothing else (a MOV data reference, a playlist
 * entry): every file it reads is the one we hand it. */
static int refuse_open(struct AVFormatContext *s, AVIOContext **pb,
                       const char *url, int flags, AVDictionary **options)
{
    (void)s;
    (void)pb;
    (void)url;
    (void)flags;
    (void)options;
    return AVERROR(EPERM);
}

/* A demuxer over a source. */
struct demux {
    struct src_io io;
    AVIOContext *pb;
    AVFormatContext *fmt;
};

static void demux_close(struct demux *d)
{
    avformat_close_input(&d->fmt);
    if (d->pb) {
        av_freep(&d->pb->buffer);
        avio_context_free(&d->pb);
    }
    src_close(&d->io);
}

/* Demuxers a video may use: the QuickTime family (MP4, MOV, 3GP, M4V). */
static bool video_demuxer(const AVInputFormat *f)
{
    return f && strcmp(f->name, "mov,mp4,m4a,3gp,3g2,mj2") == 0;
}

/* Open a video: probe the content (the name plays no part) and read the
 * headers with the QuickTime demuxer, or fail. */
static int demux_open(struct demux *d, const struct media_src *src,
                      const char *name, struct errmsg *err)
{
    const AVInputFormat *fmt = NULL;
    int rc = src_open(&d->io, src, LIMIT_VIDEO_BYTES, name, err);
    if (rc < 0)
        return rc;
    uint8_t *buf = av_malloc(IO_BUFFER);
    if (buf)
        d->pb = avio_alloc_context(buf, IO_BUFFER, 0, &d->io, io_read, NULL,
                                   io_seek);
    if (!d->pb) {
        av_free(buf);
        return errmsg_set(err, ERR_ALGO, "%s: out of memory", name);
    }
    int ret = av_probe_input_buffer2(d->pb, &fmt, "", NULL, 0, 0);
    if (ret < 0 || !video_demuxer(fmt))
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s is not an MP4 or MOV video (%s)", name,
                          ret < 0                 ? av_err2str(ret)
                          : fmt && fmt->long_name ? fmt->long_name
                                                  : "unknown format");
    d->fmt = avformat_alloc_context();
    if (!d->fmt)
        return errmsg_set(err, ERR_ALGO, "%s: out of memory", name);
    d->fmt->pb = d->pb;
    d->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    d->fmt->io_open = refuse_open;
    ret = avformat_open_input(&d->fmt, "", fmt, NULL);
    if (ret < 0) /* the context is freed on failure */
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s is not a readable MP4 or MOV video: %s", name,
                          av_err2str(ret));
    return 0;
}

/* ----------------------------------------------------------------- checks */

/* Sides and pixel count small enough to decode at all. */
static int check_decodable_size(int w, int h, const char *name,
                                const char *what, struct errmsg *err)
{
    if (w <= 0 || h <= 0)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: the %s has no size", name, what);
    if (w > MEDIA_MAX_INPUT_SIDE || h > MEDIA_MAX_INPUT_SIDE ||
        (int64_t)w * h > MEDIA_MAX_INPUT_PIXELS)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s %s is %dx%d: sides up to %d px and %d pixels "
                          "in all are accepted",
                          name, what, w, h, MEDIA_MAX_INPUT_SIDE,
                          MEDIA_MAX_INPUT_PIXELS);
    return 0;
}

/* ------------------------------------------------------ image headers */

/*
 * The size an image says it has, read from its header before any decoding
 * (libavcodec only learns it while decoding, after allocating). Each is
 * called once task_image_sniff has matched the format's magic bytes, and
 * returns 0 with *w, *h, or -1 when the header is not well-formed.
 */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int png_size(const uint8_t *d, size_t n, int *w, int *h)
{
    /* The signature (8 bytes), then the IHDR chunk: length 13, type. */
    if (n < 24 || be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
        return -1;
    uint32_t pw = be32(d + 16), ph = be32(d + 20);
    if (pw > INT32_MAX || ph > INT32_MAX)
        return -1;
    *w = (int)pw;
    *h = (int)ph;
    return 0;
}

static int jpeg_size(const uint8_t *d, size_t n, int *w, int *h)
{
    size_t at = 2; /* after the start-of-image marker */
    while (at + 4 <= n) {
        if (d[at] != 0xFF)
            return -1;
        uint8_t m = d[at + 1];
        if (m == 0xFF) { /* fill byte */
            at++;
            continue;
        }
        at += 2;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) /* no length */
            continue;
        if (m == 0xD9 || m == 0xDA) /* end, or scan data before a frame */
            return -1;
        size_t len = (size_t)d[at] << 8 | d[at + 1];
        if (len < 2 || at + len > n)
            return -1;
        /* SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC). */
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (len < 7)
                return -1;
            *h = d[at + 3] << 8 | d[at + 4];
            *w = d[at + 5] << 8 | d[at + 6];
            return 0;
        }
        at += len;
    }
    return -1;
}

static uint32_t le24(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static int webp_size(const uint8_t *d, size_t n, int *w, int *h)
{
    if (n < 30)
        return -1;
    const uint8_t *c = d + 20; /* the first chunk's data */
    if (memcmp(d + 12, "VP8 ", 4) == 0) {
        /* Frame tag (3 bytes), start code, 14-bit width and height. */
        if (c[3] != 0x9D || c[4] != 0x01 || c[5] != 0x2A)
            return -1;
        *w = (c[6] | c[7] << 8) & 0x3FFF;
        *h = (c[8] | c[9] << 8) & 0x3FFF;
        return 0;
    }
    if (memcmp(d + 12, "VP8L", 4) == 0) {
        /* Signature, then width - 1 and height - 1 in 14 bits each. */
        if (c[0] != 0x2F)
            return -1;
        *w = 1 + (((c[2] & 0x3F) << 8) | c[1]);
        *h = 1 + (((c[4] & 0x0F) << 10) | (c[3] << 2) | ((c[2] & 0xC0) >> 6));
        return 0;
    }
    if (memcmp(d + 12, "VP8X", 4) == 0) {
        /* Flags, 3 reserved bytes, canvas width - 1 and height - 1. An
         * animation (flag 0x02) is not a still. */
        if (c[0] & 0x02)
            return -1;
        *w = 1 + (int)le24(c + 4);
        *h = 1 + (int)le24(c + 7);
        return 0;
    }
    return -1;
}

/* The image formats we take: what libavformat's probe calls them, the
 * decoder, the rulebook's type, and our name and header reader. */
static const struct image_format {
    const char *demuxer;
    enum AVCodecID codec;
    enum task_image type;
    const char *name;
    int (*size)(const uint8_t *d, size_t n, int *w, int *h);
} image_formats[] = {
    { "jpeg_pipe", AV_CODEC_ID_MJPEG, TASK_IMAGE_JPEG, "jpeg", jpeg_size },
    { "png_pipe", AV_CODEC_ID_PNG, TASK_IMAGE_PNG, "png", png_size },
    /* An animated PNG is a PNG: the PNG decoder shows its still image. */
    { "apng", AV_CODEC_ID_PNG, TASK_IMAGE_PNG, "png", png_size },
    { "webp_pipe", AV_CODEC_ID_WEBP, TASK_IMAGE_WEBP, "webp", webp_size },
};

/* ------------------------------------------------------------- scaling */

/* yuvj* formats are yuv* in full range; swscale wants the plain ones. */
static enum AVPixelFormat plain_format(enum AVPixelFormat f, bool *full)
{
    static const enum AVPixelFormat map[][2] = {
        { AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P },
        { AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV422P },
        { AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUV444P },
        { AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUV440P },
        { AV_PIX_FMT_YUVJ411P, AV_PIX_FMT_YUV411P },
    };
    for (size_t i = 0; i < ARRAY_LEN(map); i++) {
        if (map[i][0] == f) {
            *full = true;
            return map[i][1];
        }
    }
    return f;
}

/* Whether swscale reads frame f's pixel format. */
static int check_scalable(const AVFrame *f, const char *name,
                          struct errmsg *err)
{
    bool full = false;
    enum AVPixelFormat fmt = plain_format(f->format, &full);
    if (sws_isSupportedInput(fmt) <= 0)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: pixel format %s is not supported", name,
                          av_get_pix_fmt_name(fmt) ? av_get_pix_fmt_name(fmt)
                                                   : "(none)");
    return 0;
}

/* A scaler and what it was made for. */
struct scaler {
    struct SwsContext *sws;
    int src_w, src_h, dst_w, dst_h;
    enum AVPixelFormat src_fmt;
    int src_range, src_space;
};

static void scaler_fini(struct scaler *s)
{
    sws_freeContext(s->sws);
    memset(s, 0, sizeof(*s));
}

/*
 * Scale `in` to cover out's size and centre-crop it, into out (yuv420p,
 * limited-range BT.709). The crop is applied to a new reference of the
 * frame; the scaler is made again only when a size or format changes.
 */
static int fit_frame(struct scaler *s, const AVFrame *in, int flags,
                     const struct media_frame *out, struct errmsg *err)
{
    int w = out->width, h = out->height, rc = 0;
    AVFrame *c = av_frame_clone(in);
    if (!c)
        return errmsg_set(err, ERR_ALGO, "out of memory scaling a picture");
    /* Keep the whole of one dimension and the middle of the other. */
    int64_t cw = in->width, ch = in->height;
    if ((int64_t)in->width * h > (int64_t)w * in->height)
        cw = ((int64_t)in->height * w + h / 2) / h;
    else
        ch = ((int64_t)in->width * h + w / 2) / w;
    cw = cw < 1 ? 1 : cw;
    ch = ch < 1 ? 1 : ch;
    c->crop_left = (size_t)(in->width - cw) / 2;
    c->crop_right = (size_t)(in->width - cw) - c->crop_left;
    c->crop_top = (size_t)(in->height - ch) / 2;
    c->crop_bottom = (size_t)(in->height - ch) - c->crop_top;
    /* Bit-packed formats (1-bit PNG) crop only right and bottom: keep the
     * top-left part rather than squash the picture. */
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(in->format);
    if (desc && (desc->flags & AV_PIX_FMT_FLAG_BITSTREAM)) {
        c->crop_right += c->crop_left;
        c->crop_bottom += c->crop_top;
        c->crop_left = c->crop_top = 0;
    }
    int ret = av_frame_apply_cropping(c, AV_FRAME_CROP_UNALIGNED);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_ALGO, "cropping: %s", av_err2str(ret));
        goto out;
    }
    bool full = in->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat fmt = plain_format(in->format, &full);
    int space =
        in->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_DEFAULT;
    if (!s->sws || s->src_w != c->width || s->src_h != c->height ||
        s->src_fmt != fmt || s->dst_w != w || s->dst_h != h ||
        s->src_range != full || s->src_space != space) {
        scaler_fini(s);
        /* Bit-exact: the same bytes whatever SIMD the CPU has. */
        s->sws = sws_getContext(
            c->width, c->height, fmt, w, h, AV_PIX_FMT_YUV420P,
            flags | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
        if (!s->sws) {
            rc =
                errmsg_set(err, ERR_ALGO, "cannot scale %s %dx%d to %dx%d",
                           av_get_pix_fmt_name(fmt), c->width, c->height, w, h);
            goto out;
        }
        /* RGB becomes BT.709 YCbCr, what the writer signals. YCbCr stays
         * in its own matrix: converting between matrices is a full
         * colour-space round trip in swscale, ten times the cost of the
         * scaling, for a shade nobody notices. Ranges are converted. */
        const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
        int dst_space =
            d && (d->flags & AV_PIX_FMT_FLAG_RGB) ? SWS_CS_ITU709 : space;
        sws_setColorspaceDetails(s->sws, sws_getCoefficients(space), full,
                                 sws_getCoefficients(dst_space), 0, 0, 1 << 16,
                                 1 << 16);
        s->src_w = c->width;
        s->src_h = c->height;
        s->src_fmt = fmt;
        s->dst_w = w;
        s->dst_h = h;
        s->src_range = full;
        s->src_space = space;
    }
    uint8_t *dst[4] = { out->data[0], out->data[1], out->data[2], NULL };
    int dst_ls[4] = { out->linesize[0], out->linesize[1], out->linesize[2], 0 };
    ret = sws_scale(s->sws, (const uint8_t *const *)c->data, c->linesize, 0,
                    c->height, dst, dst_ls);
    if (ret != h)
        rc = errmsg_set(err, ERR_ALGO, "scaling %dx%d to %dx%d failed",
                        c->width, c->height, w, h);
out:
    av_frame_free(&c);
    return rc;
}

static bool fit_size_ok(int w, int h)
{
    return w >= 2 && h >= 2 && w <= MEDIA_MAX_SIDE && h <= MEDIA_MAX_SIDE &&
           w % 2 == 0 && h % 2 == 0;
}

/* A decoder for `par` bounded to our sizes, bit-exact (its output does
 * not depend on the thread count). */
static int open_decoder(const AVCodecParameters *par, int threads,
                        AVCodecContext **out, const char *name,
                        struct errmsg *err)
{
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: no decoder for %s", name,
                          avcodec_get_name(par->codec_id));
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c)
        return errmsg_set(err, ERR_ALGO, "%s: out of memory", name);
    int ret = avcodec_parameters_to_context(c, par);
    if (ret >= 0) {
        c->max_pixels = MEDIA_MAX_INPUT_PIXELS;
        c->thread_count = threads;
        c->flags |= AV_CODEC_FLAG_BITEXACT;
        ret = avcodec_open2(c, codec, NULL);
    }
    if (ret < 0) {
        avcodec_free_context(&c);
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: cannot decode %s: %s", name,
                          avcodec_get_name(par->codec_id), av_err2str(ret));
    }
    *out = c;
    return 0;
}

/* -------------------------------------------------------------- images */

struct media_image {
    struct task_media_info info;
    AVFrame *frame; /* as decoded */
};

int media_image_open(const struct media_src *src, const char *name,
                     struct media_image **out, struct errmsg *err)
{
    struct src_io io;
    struct media_image *img = NULL;
    uint8_t *data = NULL;
    AVCodecContext *dec = NULL;
    AVCodecParameters *par = NULL;
    AVPacket *pkt = NULL;
    const struct image_format *f = NULL;
    int rc, w = 0, h = 0, ret;

    *out = NULL;
    media__av_init();
    rc = src_open(&io, src, LIMIT_IMAGE_BYTES, name, err);
    if (rc < 0)
        return rc;
    rc = src_slurp(&io, &data, name, err);
    src_close(&io);
    if (rc < 0)
        return rc;

    /* By content only: the probe sees no file name. */
    AVProbeData pd = { .filename = "",
                       .buf = data,
                       .buf_size =
                           io.size > (1 << 20) ? 1 << 20 : (int)io.size };
    int score = 0;
    const AVInputFormat *fmt = av_probe_input_format3(&pd, 1, &score);
    for (size_t i = 0; fmt && i < ARRAY_LEN(image_formats); i++)
        if (strcmp(fmt->name, image_formats[i].demuxer) == 0)
            f = &image_formats[i];
    if (!f) {
        const char *seen = fmt && fmt->long_name ? fmt->long_name : NULL;
        rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                        "%s is not a JPEG, PNG or WEBP image%s%s%s", name,
                        seen ? " (" : "", seen ? seen : "", seen ? ")" : "");
        goto out;
    }
    /* libavformat names the format; its magic bytes must say the same
     * (the test the submit applies to a bare base64 image). */
    if (task_image_sniff(data, (size_t)io.size) != f->type ||
        f->size(data, (size_t)io.size, &w, &h) < 0) {
        rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                        "%s is not a readable %s image: bad header", name,
                        f->name);
        goto out;
    }
    rc = check_decodable_size(w, h, name, "image", err);
    if (rc < 0)
        goto out;

    par = avcodec_parameters_alloc();
    pkt = av_packet_alloc();
    img = xcalloc(1, sizeof(*img));
    img->frame = av_frame_alloc();
    if (!par || !pkt || !img->frame) {
        rc = errmsg_set(err, ERR_ALGO, "%s: out of memory", name);
        goto out;
    }
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = f->codec;
    rc = open_decoder(par, 1, &dec, name, err);
    if (rc < 0)
        goto out;
    /* The whole file is the one packet; the decoder keeps the buffer. */
    ret = av_packet_from_data(pkt, data, (int)io.size);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_ALGO, "%s: %s", name, av_err2str(ret));
        goto out;
    }
    data = NULL;
    ret = avcodec_send_packet(dec, pkt);
    if (ret >= 0)
        ret = avcodec_send_packet(dec, NULL);
    if (ret >= 0)
        ret = avcodec_receive_frame(dec, img->frame);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                        "%s is not a decodable %s image: %s", name, f->name,
                        av_err2str(ret));
        goto out;
    }
    if (img->frame->width != w || img->frame->height != h) {
        rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                        "%s: the %s header says %dx%d, the picture is %dx%d",
                        name, f->name, w, h, img->frame->width,
                        img->frame->height);
        goto out;
    }
    rc = check_scalable(img->frame, name, err);
    if (rc < 0)
        goto out;
    img->info.kind = TASK_MEDIA_IMAGE;
    img->info.format = f->name;
    img->info.codec = f->name;
    img->info.width = w;
    img->info.height = h;
    *out = img;
    img = NULL;
out:
    av_free(data);
    av_packet_free(&pkt);
    avcodec_parameters_free(&par);
    avcodec_free_context(&dec);
    media_image_free(img);
    return rc;
}

const struct task_media_info *media_image_info(const struct media_image *img)
{
    return &img->info;
}

int media_image_fit(const struct media_image *img, int width, int height,
                    struct media_picture *out, struct errmsg *err)
{
    struct scaler s = { 0 };
    struct media_picture p;
    if (!fit_size_ok(width, height))
        return errmsg_set(err, ERR_ALGO, "cannot fit a picture to %dx%d", width,
                          height);
    media_picture_init(&p, width, height);
    /* Once per task: take the better filter. */
    int rc = fit_frame(&s, img->frame, SWS_BICUBIC, &p.f, err);
    scaler_fini(&s);
    if (rc < 0)
        media_picture_fini(&p);
    else
        *out = p;
    return rc;
}

void media_image_free(struct media_image *img)
{
    if (!img)
        return;
    av_frame_free(&img->frame);
    free(img);
}

/* -------------------------------------------------------------- videos */

struct media_video {
    struct task_media_info info;
    char name[64];        /* a copy: messages outlive the caller's string */
    struct media_src src; /* for the audio's own demuxer */

    struct demux vd; /* reads the video stream only */
    int vs;          /* its index */
    AVRational tb;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *cur, *next; /* on screen; decoded ahead (when have_next) */
    int64_t cur_pts, next_pts, origin; /* in tb; origin: the first's */
    bool have_next, draining, cur_fitted;
    struct media_picture pic; /* cur, fitted */
    struct scaler scaler;

    int as;            /* audio stream index, or -1 */
    bool audio_opened; /* the rest is set up on first use */
    bool audio_eof;
    struct demux ad;
    AVCodecContext *adec;
    SwrContext *swr;
    int swr_fmt, swr_rate, swr_channels; /* what swr was made for */
    AVFrame *aframe;
    AVPacket *apkt;
    int16_t *fifo; /* resampled pairs not yet taken */
    int fifo_n, fifo_at, fifo_cap;
};

/* Decode the next video frame into f: 1, 0 at the end, or an error. */
static int decode_video(struct media_video *v, AVFrame *f, struct errmsg *err)
{
    for (;;) {
        int ret = avcodec_receive_frame(v->dec, f);
        if (ret >= 0) {
            if (check_decodable_size(f->width, f->height, v->name, "video",
                                     err) < 0) {
                av_frame_unref(f);
                return err->code;
            }
            return 1;
        }
        if (ret == AVERROR_EOF)
            return 0;
        if (ret != AVERROR(EAGAIN))
            return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                              "%s: decoding the video failed: %s", v->name,
                              av_err2str(ret));
        if (v->draining)
            return 0;
        ret = av_read_frame(v->vd.fmt, v->pkt);
        if (ret < 0) {
            /* The end, or the rest unreadable: show what we have. */
            v->draining = true;
            avcodec_send_packet(v->dec, NULL);
            continue;
        }
        if (v->pkt->stream_index == v->vs) {
            /* A damaged packet is the decoder's to conceal or drop. */
            ret = avcodec_send_packet(v->dec, v->pkt);
            (void)ret;
        }
        av_packet_unref(v->pkt);
    }
}

/* A frame's start in tb, relative to nothing yet. */
static int64_t frame_pts(const AVFrame *f, int64_t prev)
{
    int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE)
        pts = f->pts;
    return pts == AV_NOPTS_VALUE ? prev + 1 : pts;
}

/* The last index entry of a stream must lie inside the file: a file cut
 * short keeps its index (moov first) but loses the data it points to. */
static bool stream_complete(AVStream *st, int64_t size)
{
    int n = avformat_index_get_entries_count(st);
    if (n <= 0)
        return true;
    const AVIndexEntry *e = avformat_index_get_entry(st, n - 1);
    return !e || e->pos + e->size <= size;
}

/* Seconds of the video stream: its own duration, else the file's. */
static double stream_seconds(const AVFormatContext *fmt, const AVStream *st)
{
    if (st->duration > 0 && st->time_base.num > 0 && st->time_base.den > 0)
        return (double)st->duration * st->time_base.num / st->time_base.den;
    if (fmt->duration > 0)
        return (double)fmt->duration / AV_TIME_BASE;
    return 0;
}

static double stream_fps(const AVStream *st, double seconds)
{
    AVRational r = st->avg_frame_rate;
    if (r.num > 0 && r.den > 0)
        return av_q2d(r);
    r = st->r_frame_rate;
    if (r.num > 0 && r.den > 0)
        return av_q2d(r);
    return seconds > 0 && st->nb_frames > 0 ? (double)st->nb_frames / seconds
                                            : 0;
}

/* An audio stream we could turn into the writer's samples. */
static bool audio_usable(const AVCodecParameters *par)
{
    return par->codec_type == AVMEDIA_TYPE_AUDIO &&
           avcodec_find_decoder(par->codec_id) && par->sample_rate > 0 &&
           par->sample_rate <= 8 * MEDIA_AUDIO_RATE &&
           par->ch_layout.nb_channels > 0 &&
           par->ch_layout.nb_channels <= MEDIA_MAX_INPUT_CHANNELS;
}

static int video_open(const struct media_src *src, const char *name,
                      int threads, struct media_video **out, struct errmsg *err)
{
    struct media_video *v = xcalloc(1, sizeof(*v));
    int rc;

    *out = NULL;
    media__av_init();
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->src = *src;
    v->as = -1;
    v->vd.io.fd = v->ad.io.fd = -1;
    rc = demux_open(&v->vd, src, name, err);
    if (rc < 0)
        goto out;
    AVFormatContext *fmt = v->vd.fmt;
    int vs = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (vs < 0) {
        rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                        "%s has no video track", name);
        goto out;
    }
    v->vs = vs;
    AVStream *st = fmt->streams[vs];
    v->tb = st->time_base;
    if (v->tb.num <= 0 || v->tb.den <= 0) {
        rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                        "%s: the video track has no time base", name);
        goto out;
    }
    /* The header's size, before the decoder allocates anything. */
    rc = check_decodable_size(st->codecpar->width, st->codecpar->height, name,
                              "video", err);
    if (rc < 0)
        goto out;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVStream *s = fmt->streams[i];
        s->discard = (int)i == vs ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
        if (v->as < 0 && audio_usable(s->codecpar))
            v->as = (int)i;
        if (((int)i == vs || (int)i == v->as) &&
            !stream_complete(s, v->vd.io.size)) {
            rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                            "%s is truncated: its index points past the end "
                            "of the file (%lld bytes)",
                            name, (long long)v->vd.io.size);
            goto out;
        }
    }

    rc = open_decoder(st->codecpar, threads, &v->dec, name, err);
    if (rc < 0)
        goto out;
    v->pkt = av_packet_alloc();
    v->cur = av_frame_alloc();
    v->next = av_frame_alloc();
    if (!v->pkt || !v->cur || !v->next) {
        rc = errmsg_set(err, ERR_ALGO, "%s: out of memory", name);
        goto out;
    }
    /* The first frame proves the track decodes; read one ahead. */
    rc = decode_video(v, v->cur, err);
    if (rc == 0)
        rc = errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                        "%s: no decodable video frame", name);
    if (rc == 0)
        rc = check_scalable(v->cur, name, err);
    if (rc < 0)
        goto out;
    v->origin = v->cur_pts = frame_pts(v->cur, 0);
    rc = decode_video(v, v->next, err);
    if (rc < 0)
        goto out;
    v->have_next = rc == 1;
    if (v->have_next)
        v->next_pts = frame_pts(v->next, v->cur_pts);

    struct task_media_info *in = &v->info;
    in->kind = TASK_MEDIA_VIDEO;
    in->format = "mov";
    in->codec = avcodec_get_name(st->codecpar->codec_id);
    in->width = st->codecpar->width;
    in->height = st->codecpar->height;
    in->duration_s = stream_seconds(fmt, st);
    in->fps = stream_fps(st, in->duration_s);
    in->has_audio = v->as >= 0;
    rc = 0;
    *out = v;
    v = NULL;
out:
    media_video_free(v);
    return rc;
}

int media_video_open(const struct media_src *src, const char *name,
                     struct media_video **out, struct errmsg *err)
{
    return video_open(src, name, VIDEO_DECODE_THREADS, out, err);
}

const struct task_media_info *media_video_info(const struct media_video *v)
{
    return &v->info;
}

/* Input frames one output frame may skip (a 240 fps input skips 10). */
#define MEDIA_SKIP_MAX 1000

int media_video_frame_at(struct media_video *v, int64_t num, int64_t den,
                         int width, int height, struct media_frame *out,
                         struct errmsg *err)
{
    if (den <= 0 || !fit_size_ok(width, height))
        return errmsg_set(err, ERR_ALGO, "bad frame request %lld/%lld %dx%d",
                          (long long)num, (long long)den, width, height);
    AVRational t_tb = { 1, den > INT_MAX ? INT_MAX : (int)den };
    /* Step on while the frame after the current one has started. A file
     * whose timestamps do not advance would make one step decode all of
     * it (hours for millions of tiny frames, deaf to the stop flag). */
    int skipped = 0;
    while (v->have_next &&
           av_compare_ts(v->next_pts - v->origin, v->tb, num, t_tb) <= 0) {
        if (++skipped > MEDIA_SKIP_MAX)
            return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                              "%s: more than %d frames within one output "
                              "frame: its timestamps do not advance",
                              v->name, MEDIA_SKIP_MAX);
        AVFrame *t = v->cur;
        v->cur = v->next;
        v->next = t;
        v->cur_pts = v->next_pts;
        v->cur_fitted = false;
        av_frame_unref(v->next);
        int rc = decode_video(v, v->next, err);
        if (rc < 0)
            return rc;
        v->have_next = rc == 1;
        if (v->have_next)
            v->next_pts = frame_pts(v->next, v->cur_pts);
    }
    if (v->pic.f.width != width || v->pic.f.height != height) {
        media_picture_fini(&v->pic);
        media_picture_init(&v->pic, width, height);
        v->cur_fitted = false;
    }
    if (!v->cur_fitted) {
        int rc = fit_frame(&v->scaler, v->cur, SWS_BILINEAR, &v->pic.f, err);
        if (rc < 0)
            return rc;
        v->cur_fitted = true;
    }
    *out = v->pic.f;
    return 0;
}

/* Open the audio side: a demuxer of its own (audio may be stored far from
 * the video it plays with), the decoder, the resampler. */
static int audio_open(struct media_video *v, struct errmsg *err)
{
    v->audio_opened = true;
    int rc = demux_open(&v->ad, &v->src, v->name, err);
    if (rc < 0)
        return rc;
    AVFormatContext *fmt = v->ad.fmt;
    if (v->as >= (int)fmt->nb_streams)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: the audio track went away", v->name);
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        fmt->streams[i]->discard =
            (int)i == v->as ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    const AVCodecParameters *par = fmt->streams[v->as]->codecpar;
    rc = open_decoder(par, 1, &v->adec, v->name, err);
    if (rc < 0)
        return rc;
    v->aframe = av_frame_alloc();
    v->apkt = av_packet_alloc();
    if (!v->aframe || !v->apkt)
        return errmsg_set(err, ERR_ALGO, "%s: out of memory", v->name);
    return 0;
}

/* Make the resampler for frame f's format, again when it changes (the
 * samples the old one held are dropped: a click, not a crash). */
static int audio_resampler(struct media_video *v, const AVFrame *f,
                           struct errmsg *err)
{
    if (v->swr && v->swr_fmt == f->format && v->swr_rate == f->sample_rate &&
        v->swr_channels == f->ch_layout.nb_channels)
        return 0;
    swr_free(&v->swr);
    if (f->sample_rate <= 0 || f->sample_rate > 8 * MEDIA_AUDIO_RATE ||
        f->ch_layout.nb_channels <= 0 ||
        f->ch_layout.nb_channels > MEDIA_MAX_INPUT_CHANNELS)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: audio of %d Hz, %d channels is not supported",
                          v->name, f->sample_rate, f->ch_layout.nb_channels);
    v->swr_fmt = f->format;
    v->swr_rate = f->sample_rate;
    v->swr_channels = f->ch_layout.nb_channels;
    AVChannelLayout in = { 0 };
    AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
    int ret;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC ||
        av_channel_layout_check(&f->ch_layout) == 0)
        av_channel_layout_default(&in, f->ch_layout.nb_channels);
    else if ((ret = av_channel_layout_copy(&in, &f->ch_layout)) < 0)
        return errmsg_set(err, ERR_ALGO, "%s: %s", v->name, av_err2str(ret));
    ret = swr_alloc_set_opts2(&v->swr, &stereo, AV_SAMPLE_FMT_S16,
                              MEDIA_AUDIO_RATE, &in, f->format, f->sample_rate,
                              0, NULL);
    av_channel_layout_uninit(&in);
    if (ret >= 0)
        ret = swr_init(v->swr);
    if (ret < 0) {
        swr_free(&v->swr);
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: cannot convert its audio (%d Hz, %d "
                          "channels): %s",
                          v->name, f->sample_rate, f->ch_layout.nb_channels,
                          av_err2str(ret));
    }
    return 0;
}

/* Resample frame f (NULL: flush) into the fifo, which is empty. */
static int audio_convert(struct media_video *v, const AVFrame *f,
                         struct errmsg *err)
{
    int in = f ? f->nb_samples : 0;
    int room = swr_get_out_samples(v->swr, in);
    if (room < 0 || room > AUDIO_FRAME_MAX)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: an audio frame of %d samples is too long",
                          v->name, in);
    if (room > v->fifo_cap) {
        v->fifo_cap = room;
        v->fifo = xrealloc(v->fifo, (size_t)room * 2 * sizeof(int16_t));
    }
    uint8_t *dst = (uint8_t *)v->fifo;
    int got = swr_convert(v->swr, &dst, room,
                          f ? (const uint8_t **)f->extended_data : NULL, in);
    if (got < 0)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: converting its audio failed: %s", v->name,
                          av_err2str(got));
    v->fifo_n = got;
    v->fifo_at = 0;
    return 0;
}

/* Refill the empty fifo: decode a frame and resample it; at the end of the
 * track, what the resampler still holds. */
static int audio_refill(struct media_video *v, struct errmsg *err)
{
    for (;;) {
        int ret = avcodec_receive_frame(v->adec, v->aframe);
        if (ret >= 0) {
            int rc = audio_resampler(v, v->aframe, err);
            if (rc == 0)
                rc = audio_convert(v, v->aframe, err);
            av_frame_unref(v->aframe);
            return rc;
        }
        if (ret == AVERROR_EOF) {
            v->audio_eof = true;
            return v->swr ? audio_convert(v, NULL, err) : 0;
        }
        if (ret != AVERROR(EAGAIN))
            return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                              "%s: decoding its audio failed: %s", v->name,
                              av_err2str(ret));
        ret = av_read_frame(v->ad.fmt, v->apkt);
        if (ret < 0) {
            avcodec_send_packet(v->adec, NULL);
            continue;
        }
        if (v->apkt->stream_index == v->as)
            avcodec_send_packet(v->adec, v->apkt); /* damage: concealed */
        av_packet_unref(v->apkt);
    }
}

int media_video_audio(struct media_video *v, int16_t *pcm, int n, int *got,
                      struct errmsg *err)
{
    *got = 0;
    if (v->as < 0)
        return 0;
    if (!v->audio_opened) {
        int rc = audio_open(v, err);
        if (rc < 0)
            return rc;
    }
    if (!v->adec) /* opening failed before */
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s: its audio cannot be read", v->name);
    while (*got < n) {
        if (v->fifo_at == v->fifo_n) {
            if (v->audio_eof)
                break;
            int rc = audio_refill(v, err);
            if (rc < 0)
                return rc;
            continue;
        }
        int k = v->fifo_n - v->fifo_at;
        if (k > n - *got)
            k = n - *got;
        memcpy(pcm + 2 * *got, v->fifo + 2 * v->fifo_at,
               (size_t)k * 2 * sizeof(int16_t));
        *got += k;
        v->fifo_at += k;
    }
    return 0;
}

void media_video_free(struct media_video *v)
{
    if (!v)
        return;
    avcodec_free_context(&v->dec);
    av_packet_free(&v->pkt);
    av_frame_free(&v->cur);
    av_frame_free(&v->next);
    media_picture_fini(&v->pic);
    scaler_fini(&v->scaler);
    demux_close(&v->vd);
    avcodec_free_context(&v->adec);
    swr_free(&v->swr);
    av_frame_free(&v->aframe);
    av_packet_free(&v->apkt);
    free(v->fifo);
    demux_close(&v->ad);
    free(v);
}

/* -------------------------------------------------------------- probing */

int media_probe(const struct media_src *src, enum task_media_kind want,
                const char *name, struct task_media_info *info,
                struct errmsg *err)
{
    memset(info, 0, sizeof(*info));
    if (want == TASK_MEDIA_IMAGE) {
        struct media_image *img = NULL;
        int rc = media_image_open(src, name, &img, err);
        if (rc == 0)
            *info = img->info;
        media_image_free(img);
        return rc;
    }
    struct media_video *v = NULL;
    int rc = video_open(src, name, PROBE_DECODE_THREADS, &v, err);
    if (rc == 0)
        *info = v->info;
    media_video_free(v);
    return rc;
}

int media_probe_file(const char *path, enum task_media_kind want,
                     const char *name, struct task_media_info *info,
                     struct errmsg *err)
{
    struct media_src src = { .path = path };
    return media_probe(&src, want, name, info, err);
}

int media_probe_mem(const uint8_t *data, size_t size, enum task_media_kind want,
                    const char *name, struct task_media_info *info,
                    struct errmsg *err)
{
    struct media_src src = { .data = data, .size = size };
    return media_probe(&src, want, name, info, err);
}
