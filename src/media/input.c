/*
 * Reading inputs: images and videos recognised by content, measured before
 * anything is allocated for them, decoded once, fitted to the output size;
 * a video's frames by timestamp and its audio as the writer takes it.
 * Bytes come through our own AVIOContext (a file or a buffer): no URL, no
 * file name and no protocol ever reaches libavformat.
 */
#include "av.h"
#include "input_int.h"

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

/* ------------------------------------------------------------ byte source */

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

void media__demux_close(struct demux *d)
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
int media__demux_open(struct demux *d, const struct media_src *src,
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
int media__check_decodable_size(int w, int h, const char *name,
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
int media__check_scalable(const AVFrame *f, const char *name,
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

void media__scaler_fini(struct scaler *s)
{
    sws_freeContext(s->sws);
    memset(s, 0, sizeof(*s));
}

/*
 * Scale `in` to cover out's size and centre-crop it, into out (yuv420p,
 * limited-range BT.709). The crop is applied to a new reference of the
 * frame; the scaler is made again only when a size or format changes.
 */
int media__fit_frame(struct scaler *s, const AVFrame *in, int flags,
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
        media__scaler_fini(s);
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

bool media__fit_size_ok(int w, int h)
{
    return w >= 2 && h >= 2 && w <= MEDIA_MAX_SIDE && h <= MEDIA_MAX_SIDE &&
           w % 2 == 0 && h % 2 == 0;
}

/* A decoder for `par` bounded to our sizes, bit-exact (its output does
 * not depend on the thread count). */
int media__open_decoder(const AVCodecParameters *par, int threads,
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
    rc = media__check_decodable_size(w, h, name, "image", err);
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
    rc = media__open_decoder(par, 1, &dec, name, err);
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
    rc = media__check_scalable(img->frame, name, err);
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
    if (!media__fit_size_ok(width, height))
        return errmsg_set(err, ERR_ALGO, "cannot fit a picture to %dx%d", width,
                          height);
    media_picture_init(&p, width, height);
    /* Once per task: take the better filter. */
    int rc = media__fit_frame(&s, img->frame, SWS_BICUBIC, &p.f, err);
    media__scaler_fini(&s);
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
