/*
 * The MP4 writer: frames drawn by the caller straight into an AVFrame,
 * encoded by libx264, audio samples gathered into AAC frames, both muxed
 * by libavformat with moov before mdat. Everything that could make two
 * runs differ is pinned down here.
 */
#include "av.h"
#include "media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include <string.h>

struct media_writer {
    AVFormatContext *fmt; /* owns fmt->pb once the file is open */
    AVCodecContext *enc;  /* H.264 */
    AVStream *st;         /* owned by fmt; stream 0 */
    AVFrame *frame;
    AVPacket *pkt;
    int64_t frames; /* pushed so far; also the next pts */
    int fps;

    AVCodecContext *aenc; /* AAC */
    AVStream *ast;        /* owned by fmt; stream 1 */
    AVFrame *aframe;      /* planar float, filled sample by sample */
    int afill;            /* samples in aframe */
    int64_t asamples;     /* samples taken in all (sent and in aframe) */
    int64_t apts;         /* pts of the next audio frame sent */
};

/* Offset of the next 00 00 01 at or after i, or n. */
static int next_start_code(const uint8_t *d, int i, int n)
{
    for (; i + 3 <= n; i++)
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1)
            return i;
    return n;
}

/*
 * Drop x264's "user data unregistered" SEI (payload type 5) from a packet.
 * libx264 puts it in front of the first frame: the x264 build and its full
 * option string, the only version-dependent bytes in the stream. Packets
 * are Annex B; emulation prevention guarantees 00 00 01 never occurs inside
 * a NAL unit, so scanning for it is exact. A unit runs from its start code
 * (with the extra zero of a four-byte one) to the next start code.
 */
static void strip_version_sei(AVPacket *pkt)
{
    uint8_t *d = pkt->data;
    int n = pkt->size;
    int s = next_start_code(d, 0, n);
    if (s == n)
        return;
    int begin = s > 0 && d[s - 1] == 0 ? s - 1 : s;
    int out = begin;
    while (s < n) {
        int next = next_start_code(d, s + 3, n);
        int end = next < n && d[next - 1] == 0 ? next - 1 : next;
        bool drop = s + 4 < end && (d[s + 3] & 0x1f) == 6 && d[s + 4] == 5;
        if (!drop) {
            if (out != begin) /* only units after a dropped one move */
                memmove(d + out, d + begin, (size_t)(end - begin));
            out += end - begin;
        }
        s = next;
        begin = end;
    }
    /* libav expects zeroed padding after the data. */
    memset(d + out, 0, (size_t)(n - out));
    pkt->size = out;
}

/* Move every packet encoder `enc` has ready into stream `st` of the file;
 * `video` strips the version SEI and gives each frame its duration. */
static int drain(struct media_writer *w, AVCodecContext *enc, AVStream *st,
                 bool video, struct errmsg *err)
{
    for (;;) {
        int ret = avcodec_receive_packet(enc, w->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return errmsg_set(err, ERR_ALGO, "%s encoding failed: %s",
                              video ? "H.264" : "AAC", av_err2str(ret));
        if (video) {
            if (av_packet_make_writable(w->pkt) < 0) {
                av_packet_unref(w->pkt);
                return errmsg_set(err, ERR_ALGO,
                                  "out of memory in the encoder");
            }
            strip_version_sei(w->pkt);
            /* Every frame lasts 1/fps: with the duration set, the muxer
             * counts the last frame too, so N frames make exactly N/fps
             * seconds. */
            if (w->pkt->duration == 0)
                w->pkt->duration = 1;
        }
        av_packet_rescale_ts(w->pkt, enc->time_base, st->time_base);
        w->pkt->stream_index = st->index;
        /* Interleaved by timestamp, so the file plays while it downloads
         * and both streams' order is fixed by their timestamps alone. */
        ret = av_interleaved_write_frame(w->fmt, w->pkt);
        av_packet_unref(w->pkt);
        if (ret < 0)
            return errmsg_set(err, ERR_IO, "writing %s failed: %s", w->fmt->url,
                              av_err2str(ret));
    }
}

/* The AAC encoder and its stream, after the video's. */
static int open_audio(struct media_writer *w, struct errmsg *err)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("aac");
    if (!codec)
        return errmsg_set(err, ERR_ALGO, "the AAC encoder is missing");
    w->aenc = avcodec_alloc_context3(codec);
    w->ast = avformat_new_stream(w->fmt, NULL);
    w->aframe = av_frame_alloc();
    if (!w->aenc || !w->ast || !w->aframe)
        return errmsg_set(err, ERR_ALGO, "out of memory opening the encoder");
    AVCodecContext *c = w->aenc;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->sample_rate = MEDIA_AUDIO_RATE;
    c->bit_rate = MEDIA_AAC_BITRATE;
    c->time_base = (AVRational){ 1, MEDIA_AUDIO_RATE };
    /* No version string in the first frame's fill element. */
    c->flags |= AV_CODEC_FLAG_BITEXACT;
    int ret = av_channel_layout_copy(
        &c->ch_layout, &(AVChannelLayout)AV_CHANNEL_LAYOUT_STEREO);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "channel layout: %s", av_err2str(ret));
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(c->priv_data, "aac_coder", MEDIA_AAC_CODER, 0);
    ret = avcodec_open2(c, codec, NULL);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "cannot open the AAC encoder: %s",
                          av_err2str(ret));
    ret = avcodec_parameters_from_context(w->ast->codecpar, c);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "audio stream parameters: %s",
                          av_err2str(ret));
    w->ast->time_base = c->time_base;

    w->aframe->format = c->sample_fmt;
    w->aframe->sample_rate = c->sample_rate;
    w->aframe->nb_samples = c->frame_size;
    ret = av_channel_layout_copy(&w->aframe->ch_layout, &c->ch_layout);
    if (ret >= 0)
        ret = av_frame_get_buffer(w->aframe, 0);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "audio frame buffer: %s",
                          av_err2str(ret));
    return 0;
}

int media_writer_new(const char *path, int width, int height, int fps,
                     struct media_writer **out, struct errmsg *err)
{
    struct media_writer *w = NULL;
    AVDictionary *opts = NULL;
    int rc = 0, ret;

    *out = NULL;
    if (width < 16 || height < 16 || width > MEDIA_MAX_SIDE ||
        height > MEDIA_MAX_SIDE || width % 2 || height % 2) {
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "video size %dx%d: sides must be even, 16..%d", width,
                          height, MEDIA_MAX_SIDE);
    }
    /* A frame must last a whole number of audio samples. */
    if (fps < 1 || fps > 120 || MEDIA_AUDIO_RATE % fps)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "frame rate %d: must be 1..120 and divide %d", fps,
                          MEDIA_AUDIO_RATE);
    media__av_init();

    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        return errmsg_set(err, ERR_ALGO, "the libx264 encoder is missing");

    w = xcalloc(1, sizeof(*w));
    w->fps = fps;
    ret = avformat_alloc_output_context2(&w->fmt, NULL, "mp4", path);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_ALGO, "MP4 muxer: %s", av_err2str(ret));
        goto out;
    }
    /* No "encoder=Lavf…" tag, no creation time: bytes depend on frames. */
    w->fmt->flags |= AVFMT_FLAG_BITEXACT;
    ret = avio_open(&w->fmt->pb, path, AVIO_FLAG_WRITE);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_IO, "cannot create %s: %s", path,
                        av_err2str(ret));
        goto out;
    }

    w->enc = avcodec_alloc_context3(codec);
    w->st = avformat_new_stream(w->fmt, NULL);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->enc || !w->st || !w->frame || !w->pkt) {
        rc = errmsg_set(err, ERR_ALGO, "out of memory opening the encoder");
        goto out;
    }
    AVCodecContext *c = w->enc;
    c->width = width;
    c->height = height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){ 1, fps };
    c->framerate = (AVRational){ fps, 1 };
    c->sample_aspect_ratio = (AVRational){ 1, 1 };
    c->thread_count = MEDIA_X264_THREADS;
    c->flags |= AV_CODEC_FLAG_BITEXACT;
    /* What media_rgb produces, so players convert it back the same way. */
    c->color_range = AVCOL_RANGE_MPEG;
    c->colorspace = AVCOL_SPC_BT709;
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(c->priv_data, "preset", MEDIA_X264_PRESET, 0);
    av_opt_set_double(c->priv_data, "crf", MEDIA_X264_CRF, 0);
    ret = avcodec_open2(c, codec, NULL);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_ALGO, "cannot open libx264 for %dx%d: %s",
                        width, height, av_err2str(ret));
        goto out;
    }
    ret = avcodec_parameters_from_context(w->st->codecpar, c);
    if (ret < 0) {
        rc =
            errmsg_set(err, ERR_ALGO, "stream parameters: %s", av_err2str(ret));
        goto out;
    }
    w->st->time_base = c->time_base;
    w->st->avg_frame_rate = c->framerate;
    rc = open_audio(w, err);
    if (rc < 0)
        goto out;

    w->frame->format = c->pix_fmt;
    w->frame->width = width;
    w->frame->height = height;
    ret = av_frame_get_buffer(w->frame, 0);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_ALGO, "frame buffer: %s", av_err2str(ret));
        goto out;
    }

    av_dict_set(&opts, "movflags", "+faststart", 0);
    ret = avformat_write_header(w->fmt, &opts);
    if (ret < 0) {
        rc = errmsg_set(err, ERR_IO, "writing the MP4 header to %s: %s", path,
                        av_err2str(ret));
        goto out;
    }
    *out = w;
    w = NULL;
out:
    av_dict_free(&opts);
    media_writer_free(w);
    return rc;
}

int media_writer_frame(struct media_writer *w, struct media_frame *f,
                       struct errmsg *err)
{
    /* The encoder may still hold a reference to the last frame's buffer;
     * then this allocates a fresh one rather than draw under its feet. */
    int ret = av_frame_make_writable(w->frame);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "frame buffer: %s", av_err2str(ret));
    for (int i = 0; i < 3; i++) {
        f->data[i] = w->frame->data[i];
        f->linesize[i] = w->frame->linesize[i];
    }
    f->width = w->frame->width;
    f->height = w->frame->height;
    return 0;
}

int media_writer_push(struct media_writer *w, struct errmsg *err)
{
    w->frame->pts = w->frames;
    int ret = avcodec_send_frame(w->enc, w->frame);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "H.264 encoding failed: %s",
                          av_err2str(ret));
    w->frames++;
    return drain(w, w->enc, w->st, true, err);
}

/* Encode the audio frame filled so far (a short one only at the end). */
static int send_audio(struct media_writer *w, struct errmsg *err)
{
    w->aframe->nb_samples = w->afill;
    w->aframe->pts = w->apts;
    w->apts += w->afill;
    w->afill = 0;
    int ret = avcodec_send_frame(w->aenc, w->aframe);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "AAC encoding failed: %s",
                          av_err2str(ret));
    return drain(w, w->aenc, w->ast, false, err);
}

/* Append n samples (pcm NULL: silence) to the audio frames. */
static int add_audio(struct media_writer *w, const int16_t *pcm, int64_t n,
                     struct errmsg *err)
{
    const float scale = 1.0f / 32768.0f;
    int size = w->aenc->frame_size;
    while (n > 0) {
        if (w->afill == 0) {
            /* The encoder may still hold the last frame's buffer. */
            w->aframe->nb_samples = size;
            int ret = av_frame_make_writable(w->aframe);
            if (ret < 0)
                return errmsg_set(err, ERR_ALGO, "audio frame buffer: %s",
                                  av_err2str(ret));
        }
        int k = size - w->afill < n ? size - w->afill : (int)n;
        float *l = (float *)w->aframe->data[0] + w->afill;
        float *r = (float *)w->aframe->data[1] + w->afill;
        for (int i = 0; i < k; i++) {
            l[i] = pcm ? pcm[2 * i] * scale : 0.0f;
            r[i] = pcm ? pcm[2 * i + 1] * scale : 0.0f;
        }
        if (pcm)
            pcm += 2 * k;
        n -= k;
        w->afill += k;
        w->asamples += k;
        if (w->afill == size) {
            int rc = send_audio(w, err);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Samples the video pushed so far lasts. */
static int64_t audio_limit(const struct media_writer *w)
{
    return w->frames * (MEDIA_AUDIO_RATE / w->fps);
}

int media_writer_audio(struct media_writer *w, const int16_t *pcm, int n,
                       struct errmsg *err)
{
    int64_t room = audio_limit(w) - w->asamples;
    return add_audio(w, pcm, n < room ? n : room, err);
}

int media_writer_finish(struct media_writer *w, struct errmsg *err)
{
    /* Silence up to the video's end, then the short last frame. */
    int rc = add_audio(w, NULL, audio_limit(w) - w->asamples, err);
    if (rc == 0 && w->afill > 0)
        rc = send_audio(w, err);
    if (rc < 0)
        return rc;
    int ret = avcodec_send_frame(w->aenc, NULL);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "flushing the AAC encoder: %s",
                          av_err2str(ret));
    rc = drain(w, w->aenc, w->ast, false, err);
    if (rc < 0)
        return rc;
    ret = avcodec_send_frame(w->enc, NULL);
    if (ret < 0)
        return errmsg_set(err, ERR_ALGO, "flushing the encoder: %s",
                          av_err2str(ret));
    rc = drain(w, w->enc, w->st, true, err);
    if (rc < 0)
        return rc;
    /* With faststart the trailer also rewrites the file, moov first. */
    ret = av_write_trailer(w->fmt);
    if (ret < 0)
        return errmsg_set(err, ERR_IO, "finishing %s: %s", w->fmt->url,
                          av_err2str(ret));
    ret = avio_closep(&w->fmt->pb);
    if (ret < 0)
        return errmsg_set(err, ERR_IO, "closing %s: %s", w->fmt->url,
                          av_err2str(ret));
    return 0;
}

int64_t media_writer_frames(const struct media_writer *w)
{
    return w->frames;
}

void media_writer_free(struct media_writer *w)
{
    if (!w)
        return;
    /* Abandoned (a stopped task): drain the AAC encoder's queue into
     * nothing, or libav warns about the frames left in it. */
    if (w->aenc && w->pkt && avcodec_is_open(w->aenc) &&
        avcodec_send_frame(w->aenc, NULL) >= 0)
        while (avcodec_receive_packet(w->aenc, w->pkt) >= 0)
            av_packet_unref(w->pkt);
    avcodec_free_context(&w->enc);
    avcodec_free_context(&w->aenc);
    av_frame_free(&w->aframe);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    if (w->fmt) {
        avio_closep(&w->fmt->pb);
        avformat_free_context(w->fmt);
    }
    free(w);
}
