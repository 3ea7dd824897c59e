/*
 * Reading videos: frames by timestamp from one decode pass, the audio as
 * the writer takes it (resampled to the output's rate and layout), and
 * media_probe, which measures an input of either kind into task/'s
 * struct task_media_info. The byte source, demuxer and scaler are
 * input.c's (input_int.h).
 */
#include "av.h"
#include "input_int.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            if (media__check_decodable_size(f->width, f->height, v->name,
                                            "video", err) < 0) {
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
    rc = media__demux_open(&v->vd, src, name, err);
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
    rc = media__check_decodable_size(st->codecpar->width, st->codecpar->height,
                                     name, "video", err);
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

    rc = media__open_decoder(st->codecpar, threads, &v->dec, name, err);
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
        rc = media__check_scalable(v->cur, name, err);
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
    if (den <= 0 || !media__fit_size_ok(width, height))
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
        int rc =
            media__fit_frame(&v->scaler, v->cur, SWS_BILINEAR, &v->pic.f, err);
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
    int rc = media__demux_open(&v->ad, &v->src, v->name, err);
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
    rc = media__open_decoder(par, 1, &v->adec, v->name, err);
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
    media__scaler_fini(&v->scaler);
    media__demux_close(&v->vd);
    avcodec_free_context(&v->adec);
    swr_free(&v->swr);
    av_frame_free(&v->aframe);
    av_packet_free(&v->apkt);
    free(v->fifo);
    media__demux_close(&v->ad);
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
            *info = *media_image_info(img);
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
