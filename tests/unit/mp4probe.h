/*
 * Test helpers for MP4 files: what ffprobe says about one (codec, size,
 * rate, durations, frame count; its audio track), the order of its
 * top-level atoms, byte comparison, one decoded frame's luma and the audio's
 * loudness via the ffmpeg CLI, and fixtures made with the ffmpeg CLI (no
 * binary file is committed). Paths come from mkdtemp, so they are safe to
 * put in a shell command.
 */
#ifndef PADDOCK_MP4PROBE_H
#define PADDOCK_MP4PROBE_H

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mp4_info {
    char codec[32], pix_fmt[32], r_frame_rate[32];
    int width, height;
    long nb_frames;
    double format_duration, stream_duration;
};

static inline void mp4_copy_str(char *dst, size_t n, json_t *v)
{
    snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static inline double mp4_num(json_t *v)
{
    return json_is_string(v) ? strtod(json_string_value(v), NULL) : -1;
}

/* ffprobe -show_streams -show_format of the first stream; 0 or -1. */
static inline int mp4_probe(const char *path, struct mp4_info *info)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -show_streams -show_format -of json '%s'", path);
    memset(info, 0, sizeof(*info));
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    json_t *root = json_loadf(p, 0, NULL);
    int status = pclose(p);
    json_t *st = json_array_get(json_object_get(root, "streams"), 0);
    json_t *fmt = json_object_get(root, "format");
    int rc = -1;
    if (status == 0 && st && fmt) {
        mp4_copy_str(info->codec, sizeof(info->codec),
                     json_object_get(st, "codec_name"));
        mp4_copy_str(info->pix_fmt, sizeof(info->pix_fmt),
                     json_object_get(st, "pix_fmt"));
        mp4_copy_str(info->r_frame_rate, sizeof(info->r_frame_rate),
                     json_object_get(st, "r_frame_rate"));
        info->width = (int)json_integer_value(json_object_get(st, "width"));
        info->height = (int)json_integer_value(json_object_get(st, "height"));
        info->nb_frames = (long)mp4_num(json_object_get(st, "nb_frames"));
        info->stream_duration = mp4_num(json_object_get(st, "duration"));
        info->format_duration = mp4_num(json_object_get(fmt, "duration"));
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* The whole file into a new buffer (caller frees); NULL on failure. */
static inline unsigned char *mp4_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = size > 0 ? malloc((size_t)size) : NULL;
    if (d && fread(d, 1, (size_t)size, f) != (size_t)size) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *n = d ? (size_t)size : 0;
    return d;
}

/* True when the top-level 'moov' atom comes before 'mdat'. */
static inline bool mp4_moov_first(const char *path)
{
    size_t n, at = 0;
    unsigned char *d = mp4_slurp(path, &n);
    long moov = -1, mdat = -1;
    while (d && at + 8 <= n) {
        uint64_t size = (uint64_t)d[at] << 24 | (uint64_t)d[at + 1] << 16 |
                        (uint64_t)d[at + 2] << 8 | d[at + 3];
        if (size == 1 && at + 16 <= n) { /* 64-bit size follows the type */
            size = 0;
            for (int i = 0; i < 8; i++)
                size = size << 8 | d[at + 8 + i];
        } else if (size == 0) {
            size = n - at; /* runs to the end of the file */
        }
        if (memcmp(d + at + 4, "moov", 4) == 0 && moov < 0)
            moov = (long)at;
        if (memcmp(d + at + 4, "mdat", 4) == 0 && mdat < 0)
            mdat = (long)at;
        if (size < 8)
            break;
        at += size;
    }
    free(d);
    return moov >= 0 && mdat >= 0 && moov < mdat;
}

/* True when both files exist and hold the same bytes. */
static inline bool mp4_same(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *da = mp4_slurp(a, &na), *db = mp4_slurp(b, &nb);
    bool same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

/* Decode frame `index` of `path` as 8-bit luma into out[w*h]; 0 or -1. */
static inline int mp4_luma(const char *path, int index, int w, int h,
                           unsigned char *out)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -v error -i '%s' -vf 'select=eq(n\\,%d)' -frames:v 1 "
             "-f rawvideo -pix_fmt gray -",
             path, index);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t got = fread(out, 1, (size_t)w * h, p);
    int status = pclose(p);
    return status == 0 && got == (size_t)w * h ? 0 : -1;
}

struct mp4_audio {
    char codec[32];
    int sample_rate, channels;
    double duration;
};

/* ffprobe of the first audio stream; 0, or -1 when there is none. */
static inline int mp4_probe_audio(const char *path, struct mp4_audio *a)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams a:0 -show_streams -of json "
             "'%s'",
             path);
    memset(a, 0, sizeof(*a));
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    json_t *root = json_loadf(p, 0, NULL);
    int status = pclose(p);
    json_t *st = json_array_get(json_object_get(root, "streams"), 0);
    int rc = -1;
    if (status == 0 && st) {
        mp4_copy_str(a->codec, sizeof(a->codec),
                     json_object_get(st, "codec_name"));
        a->sample_rate = (int)mp4_num(json_object_get(st, "sample_rate"));
        a->channels = (int)json_integer_value(json_object_get(st, "channels"));
        a->duration = mp4_num(json_object_get(st, "duration"));
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* Root mean square of the audio's first `seconds` (mono, 16-bit full
 * scale = 32768) into *rms; 0 or -1. */
static inline int mp4_audio_rms(const char *path, double seconds, double *rms)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -v error -i '%s' -vn -t %.3f -ac 1 -ar 48000 -f s16le -",
             path, seconds);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int16_t buf[4096];
    size_t n, total = 0;
    double sum = 0;
    while ((n = fread(buf, sizeof(buf[0]), 4096, p)) > 0) {
        for (size_t i = 0; i < n; i++)
            sum += (double)buf[i] * buf[i];
        total += n;
    }
    int status = pclose(p);
    *rms = total ? sqrt(sum / (double)total) : 0;
    return status == 0 && total > 0 ? 0 : -1;
}

/* Frame 0 of any picture or video as 8-bit luma, scaled to cover w x h
 * and centre-cropped (what the sandbox does to an input); 0 or -1. */
static inline int mp4_fit_luma(const char *path, int w, int h,
                               unsigned char *out)
{
    char cmd[640];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -v error -i '%s' -vf "
             "'scale=%d:%d:force_original_aspect_ratio=increase:flags=bicubic,"
             "crop=%d:%d' -frames:v 1 -f rawvideo -pix_fmt gray -",
             path, w, h, w, h);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t got = fread(out, 1, (size_t)w * h, p);
    int status = pclose(p);
    return status == 0 && got == (size_t)w * h ? 0 : -1;
}

/* Run `ffmpeg -v error -y <args>` (printf-style) to make a fixture; 0 or
 * -1. */
static inline int mp4_make(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline int mp4_make(const char *fmt, ...)
{
    char cmd[1024];
    int n = snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "  fixture failed: %s\n", cmd);
    return rc == 0 ? 0 : -1;
}

/* Write n bytes to a new file; 0 or -1. */
static inline int mp4_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = fwrite(data, 1, n, f);
    return fclose(f) == 0 && put == n ? 0 : -1;
}

/* Mean absolute difference of two n-byte pictures. */
static inline double mp4_mad(const unsigned char *a, const unsigned char *b,
                             size_t n)
{
    long long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
    return n ? (double)sum / (double)n : 0;
}

#endif
