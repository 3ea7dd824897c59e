/*
 * Unit tests of src/media: the drawing primitives on in-memory frames, and
 * the MP4 writer checked from outside with ffprobe (size, rate, exact
 * duration of both tracks, faststart) and byte for byte (determinism).
 * The readers have their own suite (test_media_input.c).
 */
#include "../../src/media/media.h"
#include "mp4probe.h"
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-media-XXXXXX";

/* An in-memory yuv420p frame, padded like libav's (linesize > width). */
struct test_frame {
    struct media_frame f;
    uint8_t *mem;
};

static void frame_init(struct test_frame *t, int w, int h, uint8_t y, uint8_t u,
                       uint8_t v)
{
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    int ls = w + 32, cls = cw + 16;
    t->mem = malloc((size_t)ls * h + 2 * (size_t)cls * ch);
    t->f.data[0] = t->mem;
    t->f.data[1] = t->mem + (size_t)ls * h;
    t->f.data[2] = t->f.data[1] + (size_t)cls * ch;
    t->f.linesize[0] = ls;
    t->f.linesize[1] = t->f.linesize[2] = cls;
    t->f.width = w;
    t->f.height = h;
    memset(t->f.data[0], y, (size_t)ls * h);
    memset(t->f.data[1], u, (size_t)cls * ch);
    memset(t->f.data[2], v, (size_t)cls * ch);
}

static uint8_t *px(const struct test_frame *t, int plane, int x, int y)
{
    return t->f.data[plane] + (size_t)y * t->f.linesize[plane] + x;
}

static void rgb_conversion(void)
{
    struct media_yuv c = media_rgb(0, 0, 0);
    CHECK(c.y == 16 && c.u == 128 && c.v == 128);
    c = media_rgb(255, 255, 255);
    CHECK(c.y == 235 && c.u == 128 && c.v == 128);
    c = media_rgb(255, 0, 0); /* BT.709 red: 63, 102, 240 */
    CHECK_INT(c.y, 63);
    CHECK_INT(c.u, 102);
    CHECK_INT(c.v, 240);
    c = media_rgb(0, 0, 255);
    CHECK_INT(c.u, 240);
}

static void fill_and_clip(void)
{
    struct test_frame t;
    frame_init(&t, 64, 48, 50, 60, 70);
    struct media_yuv c = { 200, 10, 20 };
    media_fill_rect(&t.f, 3, 5, 10, 4, c);
    CHECK_INT(*px(&t, 0, 3, 5), 200);
    CHECK_INT(*px(&t, 0, 12, 8), 200);
    CHECK_INT(*px(&t, 0, 2, 5), 50);
    CHECK_INT(*px(&t, 0, 13, 5), 50);
    CHECK_INT(*px(&t, 0, 3, 9), 50);
    /* Chroma: every sample touched, x 1..6, y 2..4. */
    CHECK_INT(*px(&t, 1, 1, 2), 10);
    CHECK_INT(*px(&t, 2, 6, 4), 20);
    CHECK_INT(*px(&t, 1, 0, 2), 60);
    CHECK_INT(*px(&t, 1, 7, 2), 60);
    CHECK_INT(*px(&t, 1, 1, 5), 60);

    /* Half outside, wholly outside, empty: clipped, no write past edges
     * (ASan watches the padding-free end of the buffer). */
    media_fill_rect(&t.f, 60, 44, 100, 100, c);
    CHECK_INT(*px(&t, 0, 63, 47), 200);
    CHECK_INT(*px(&t, 0, 59, 47), 50);
    CHECK_INT(*px(&t, 0, 64, 47), 50); /* padding untouched */
    media_fill_rect(&t.f, -10, -10, 12, 11, c);
    CHECK_INT(*px(&t, 0, 0, 0), 200);
    CHECK_INT(*px(&t, 0, 2, 0), 50);
    media_fill_rect(&t.f, 100, 100, 5, 5, c);
    media_fill_rect(&t.f, 10, 10, 0, 5, c);
    media_fill_rect(&t.f, 10, 10, -3, 5, c);
    CHECK_INT(*px(&t, 0, 10, 10), 50);
    free(t.mem);
}

static void blending(void)
{
    struct test_frame t;
    frame_init(&t, 32, 32, 100, 100, 100);
    struct media_yuv c = { 200, 0, 255 };
    media_blend_rect(&t.f, 0, 0, 8, 8, c, 0);
    CHECK_INT(*px(&t, 0, 0, 0), 100);
    media_blend_rect(&t.f, 0, 0, 8, 8, c, 128);
    CHECK_INT(*px(&t, 0, 0, 0), 150);
    CHECK_INT(*px(&t, 1, 0, 0), 50);
    CHECK_INT(*px(&t, 2, 3, 3), 178);
    CHECK_INT(*px(&t, 0, 8, 0), 100);
    media_blend_rect(&t.f, 16, 16, 4, 4, c, 256);
    CHECK_INT(*px(&t, 0, 17, 17), 200);
    CHECK_INT(*px(&t, 1, 8, 8), 0);
    free(t.mem);
}

static void text(void)
{
    CHECK_INT(media_text_width("", 3), 0);
    CHECK_INT(media_text_width("A", 1), 5);
    CHECK_INT(media_text_width("AB", 2), 22);
    CHECK_INT(media_text_height(3), 21);

    struct test_frame t;
    frame_init(&t, 64, 32, 16, 128, 128);
    struct media_yuv w = { 235, 128, 128 };
    /* 'A' at scale 2: top row is .###. , row 3 is ##### */
    media_draw_text(&t.f, 4, 2, 2, "a", w);
    CHECK_INT(*px(&t, 0, 4, 2), 16);  /* column 0 of row 0: off */
    CHECK_INT(*px(&t, 0, 6, 2), 235); /* column 1 of row 0: on */
    CHECK_INT(*px(&t, 0, 7, 3), 235);
    CHECK_INT(*px(&t, 0, 12, 2), 16); /* column 4 of row 0: off */
    CHECK_INT(*px(&t, 0, 4, 8), 235); /* row 3 is full */
    CHECK_INT(*px(&t, 0, 13, 9), 235);
    CHECK_INT(*px(&t, 0, 14, 8), 16); /* the gap column */
    CHECK_INT(*px(&t, 0, 6, 16), 16); /* below the glyph */

    /* Unknown characters draw as '?', the same pixels. */
    struct test_frame q, u;
    frame_init(&q, 16, 16, 16, 128, 128);
    frame_init(&u, 16, 16, 16, 128, 128);
    media_draw_text(&q.f, 0, 0, 1, "?", w);
    media_draw_text(&u.f, 0, 0, 1, "\xe4", w);
    CHECK(memcmp(q.mem, u.mem, (size_t)q.f.linesize[0] * 16) == 0);
    CHECK_INT(*px(&q, 0, 1, 0), 235);
    /* Text running off the frame is clipped. */
    media_draw_text(&t.f, 50, 28, 3, "WXYZ", w);
    free(t.mem);
    free(q.mem);
    free(u.mem);
}

/* The mark changes its box and nothing else, at every output size. */
static void watermark_stays_in_its_box(void)
{
    static const int sizes[][2] = {
        { 832, 480 },  { 480, 832 },   { 624, 624 },  { 976, 416 },
        { 1280, 720 }, { 1920, 1080 }, { 944, 2208 }, { 1440, 1440 },
    };
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        int fw = sizes[i][0], fh = sizes[i][1];
        struct test_frame a, b;
        frame_init(&a, fw, fh, 120, 90, 160);
        frame_init(&b, fw, fh, 120, 90, 160);
        media_draw_watermark(&b.f, "AI GENERATED");
        int x, y, w, h;
        media_watermark_box(fw, fh, "AI GENERATED", &x, &y, &w, &h);
        CHECK(x > fw / 2 && y > fh / 2);
        CHECK(x + w < fw && y + h < fh);
        CHECK(w >= fw / 10); /* visible, not a speck */
        long outside = 0, inside = 0;
        for (int p = 0; p < 3; p++) {
            int s = p ? 1 : 0, pw = (fw + s) >> s, ph = (fh + s) >> s;
            for (int yy = 0; yy < ph; yy++) {
                for (int xx = 0; xx < pw; xx++) {
                    bool in = (xx << s) >= x && (xx << s) < x + w &&
                              (yy << s) >= y && (yy << s) < y + h;
                    bool diff = *px(&a, p, xx, yy) != *px(&b, p, xx, yy);
                    if (diff && in)
                        inside++;
                    else if (diff)
                        outside++;
                }
            }
        }
        CHECK_INT(outside, 0);
        CHECK(inside > (long)w * h / 2);
        free(a.mem);
        free(b.mem);
    }
}

static void pictures_and_windows(void)
{
    struct media_picture p;
    media_picture_init(&p, 98, 50);
    CHECK(p.f.width == 98 && p.f.height == 50);
    for (int i = 0; i < 3; i++) {
        CHECK(((uintptr_t)p.f.data[i] & 63) == 0);
        CHECK(p.f.linesize[i] % 64 == 0);
    }
    CHECK(p.f.linesize[0] >= 98 && p.f.linesize[1] >= 49);
    /* Every byte of every plane is ours (ASan checks). */
    memset(p.f.data[0], 1, (size_t)p.f.linesize[0] * 50);
    memset(p.f.data[1], 2, (size_t)p.f.linesize[1] * 25);
    memset(p.f.data[2], 3, (size_t)p.f.linesize[2] * 25);

    /* Windows: even corner, clipped to the frame. */
    struct media_frame w = media_frame_window(&p.f, 11, 5, 40, 100);
    CHECK_INT(w.width, 40);
    CHECK_INT(w.height, 46); /* y 5 became 4 */
    CHECK(w.data[0] == p.f.data[0] + 4 * p.f.linesize[0] + 10);
    CHECK(w.data[1] == p.f.data[1] + 2 * p.f.linesize[1] + 5);
    w = media_frame_window(&p.f, 200, 200, 10, 10);
    CHECK(w.width == 0 && w.height == 0);

    /* Copy into a window, and back through a table. */
    struct test_frame t;
    frame_init(&t, 20, 10, 100, 110, 120);
    w = media_frame_window(&p.f, 4, 2, 20, 10);
    media_copy(&w, &t.f);
    CHECK_INT(p.f.data[0][2 * p.f.linesize[0] + 4], 100);
    CHECK_INT(p.f.data[0][11 * p.f.linesize[0] + 23], 100);
    CHECK_INT(p.f.data[0][12 * p.f.linesize[0] + 23], 1);
    CHECK_INT(p.f.data[0][2 * p.f.linesize[0] + 24], 1);
    CHECK_INT(p.f.data[1][1 * p.f.linesize[1] + 2], 110);
    /* Graded: contrast doubled around 90 (100 -> 110), saturation halved
     * around 128 plus 20 (110 -> 139), flattened to 7. */
    struct media_grade g[3] = {
        { 128, 0, 90, 16, 235 },
        { 32, 20, 128, 16, 240 },
        { 0, 7, 0, 0, 255 },
    };
    media_copy_grade(&t.f, &w, g);
    CHECK_INT(*px(&t, 0, 19, 9), 110);
    CHECK_INT(*px(&t, 1, 9, 4), 139);
    CHECK_INT(*px(&t, 2, 0, 0), 7);
    /* Clamping, and the scalar tail agrees with the vector body. */
    g[0] = (struct media_grade){ 128, 200, 90, 16, 235 };
    media_copy_grade(&t.f, &w, g);
    CHECK_INT(*px(&t, 0, 0, 0), 235);
    CHECK_INT(*px(&t, 0, 19, 0), 235);
    g[0] = (struct media_grade){ 64, -100, 90, 16, 235 };
    media_copy_grade(&t.f, &w, g);
    CHECK_INT(*px(&t, 0, 3, 3), 16);
    CHECK_INT(*px(&t, 0, 17, 3), 16);
    CHECK_INT(*px(&t, 0, 20, 0), 100); /* padding untouched */
    free(t.mem);
    media_picture_fini(&p);
    media_picture_fini(&p); /* zeroed: fine twice */
}

static void mixing(void)
{
    struct test_frame a, b, d;
    frame_init(&a, 37, 9, 100, 16, 240);
    frame_init(&b, 37, 9, 200, 240, 16);
    frame_init(&d, 37, 9, 0, 0, 0);
    media_mix(&d.f, &a.f, &b.f, 0);
    CHECK_INT(*px(&d, 0, 36, 8), 100);
    media_mix(&d.f, &a.f, &b.f, 256);
    CHECK_INT(*px(&d, 0, 36, 8), 200);
    CHECK_INT(*px(&d, 1, 18, 4), 240);
    media_mix(&d.f, &a.f, &b.f, 64); /* odd widths: the tail too */
    CHECK_INT(*px(&d, 0, 0, 0), 125);
    CHECK_INT(*px(&d, 0, 36, 8), 125);
    CHECK_INT(*px(&d, 1, 18, 4), 72);
    CHECK_INT(*px(&d, 0, 37, 0), 0);  /* padding untouched */
    media_mix(&a.f, &a.f, &b.f, 128); /* in place */
    CHECK_INT(*px(&a, 0, 5, 5), 150);
    free(a.mem);
    free(b.mem);
    free(d.mem);
}

static void magnified_view(void)
{
    struct test_frame src, dst;
    frame_init(&src, 64, 32, 0, 128, 128);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 64; x++)
            *px(&src, 0, x, y) = (uint8_t)(x * 3 + y);
    frame_init(&dst, 48, 24, 0, 0, 0);

    /* Whole-pixel view at scale 1: an exact copy of that window. */
    media_view(&dst.f, &src.f, (int64_t)6 << 16, (int64_t)4 << 16, 65536);
    CHECK_INT(*px(&dst, 0, 0, 0), 6 * 3 + 4);
    CHECK_INT(*px(&dst, 0, 47, 23), 53 * 3 + 27);
    /* Half a pixel off: the average of neighbours. */
    media_view(&dst.f, &src.f, (int64_t)6 << 16 | 32768, (int64_t)4 << 16,
               65536);
    CHECK_INT(*px(&dst, 0, 0, 0), (6 * 3 + 4 + 7 * 3 + 4 + 1) / 2);
    /* Magnified twice: a ramp of half the slope, chroma stays flat. */
    media_view(&dst.f, &src.f, 0, 0, 32768);
    CHECK_INT(*px(&dst, 0, 0, 0), 0);
    CHECK_INT(*px(&dst, 0, 2, 0), 3);
    CHECK_INT(*px(&dst, 0, 1, 0), 2); /* 1.5 rounded */
    CHECK_INT(*px(&dst, 0, 0, 2), 1);
    CHECK_INT(*px(&dst, 1, 23, 11), 128);
    /* The last source column and row are reachable, never passed. */
    media_view(&dst.f, &src.f, (int64_t)(63 - 47) << 16,
               (int64_t)(31 - 23) << 16, 65536);
    CHECK_INT(*px(&dst, 0, 47, 23), 63 * 3 + 31);
    media_view(&dst.f, &src.f, (int64_t)16 << 16 | 1, (int64_t)8 << 16 | 1,
               65535);
    CHECK(*px(&dst, 0, 47, 23) >= 63 * 3 + 31 - 1);
    free(src.mem);
    free(dst.mem);
}

/* media_view against its definition, pixel by pixel, on noise: the
 * 16-column SIMD runs and the scalar tail must both match. */
static int view_ref(const struct test_frame *t, int p, int64_t x0, int64_t y0,
                    int64_t step, int x, int y)
{
    int sw = p ? (t->f.width + 1) / 2 : t->f.width;
    int sh = p ? (t->f.height + 1) / 2 : t->f.height;
    if (p) {
        x0 /= 2;
        y0 /= 2;
    }
    int64_t sx = x0 + x * step, sy = y0 + y * step;
    int i = (int)(sx >> 16), f = (int)((sx >> 8) & 255);
    int j = (int)(sy >> 16), g = (int)((sy >> 8) & 255);
    if (i >= sw - 1)
        i = sw - 1, f = 0;
    if (j >= sh - 1)
        j = sh - 1, g = 0;
    int row[2];
    for (int k = 0; k < 2; k++) {
        const uint8_t *r =
            t->f.data[p] + (size_t)(j + (k && g ? 1 : 0)) * t->f.linesize[p];
        int a = r[i], b = r[i + 1 < sw ? i + 1 : i];
        row[k] = (a * (256 - f) + b * f + 128) >> 8;
    }
    return (row[0] * (256 - g) + row[1] * g + 128) >> 8;
}

static void view_matches_definition(void)
{
    struct test_frame src, dst;
    frame_init(&src, 300, 200, 0, 0, 0);
    uint32_t seed = 12345;
    for (int p = 0; p < 3; p++) {
        int w = p ? 150 : 300, h = p ? 100 : 200;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                seed = seed * 1103515245u + 12345u;
                *px(&src, p, x, y) = (uint8_t)(seed >> 24);
            }
    }
    frame_init(&dst, 250, 170, 0, 0, 0);
    static const int64_t steps[] = { 65536, 65535, 60000, 52429, 40000 };
    long bad = 0;
    for (size_t s = 0; s < ARRAY_LEN(steps); s++) {
        int64_t step = steps[s];
        /* The view stays inside: x0 + 249 * step <= 299 << 16. */
        int64_t x0 = ((int64_t)299 << 16) - 249 * step;
        int64_t y0 = ((int64_t)199 << 16) - 169 * step;
        x0 = x0 * (int64_t)(s + 1) / 6;
        y0 = y0 * (int64_t)(s + 1) / 6;
        media_view(&dst.f, &src.f, x0, y0, step);
        for (int p = 0; p < 3; p++) {
            int w = p ? 125 : 250, h = p ? 85 : 170;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    if (*px(&dst, p, x, y) !=
                        view_ref(&src, p, x0, y0, step, x, y))
                        bad++;
        }
    }
    CHECK_INT(bad, 0);
    free(src.mem);
    free(dst.mem);
}

/* Frame i: a square moving right over a vertical gradient. */
static void draw_test_frame(const struct media_frame *f, int i)
{
    for (int y = 0; y < f->height; y++)
        memset(f->data[0] + (size_t)y * f->linesize[0], 16 + y, f->width);
    for (int y = 0; y < (f->height + 1) / 2; y++) {
        memset(f->data[1] + (size_t)y * f->linesize[1], 128, f->width / 2);
        memset(f->data[2] + (size_t)y * f->linesize[2], 128, f->width / 2);
    }
    media_fill_rect(f, 4 * i, 20, 24, 24, media_rgb(255, 40, 40));
}

/* Frame i's audio: a 300 Hz square wave, left only, `per` pairs. */
static void tone(int16_t *pcm, int i, int per)
{
    for (int k = 0; k < per; k++) {
        long n = (long)i * per + k;
        pcm[2 * k] = (int16_t)((n / 80) % 2 ? 4000 : -4000);
        pcm[2 * k + 1] = 0;
    }
}

/* A clip of `frames` frames; with `audio`, each frame's audio is pushed
 * after it (`per` pairs, possibly more than a frame lasts). */
static int write_clip_audio(const char *path, int w, int h, int frames, int per,
                            struct errmsg *err)
{
    struct media_writer *mw = NULL;
    int16_t pcm[2 * 4000];
    int rc = media_writer_new(path, w, h, MEDIA_FPS, &mw, err);
    for (int i = 0; rc == 0 && i < frames; i++) {
        struct media_frame f;
        rc = media_writer_frame(mw, &f, err);
        if (rc == 0) {
            CHECK(f.width == w && f.height == h);
            draw_test_frame(&f, i);
            rc = media_writer_push(mw, err);
        }
        if (rc == 0 && per > 0) {
            tone(pcm, i, per);
            rc = media_writer_audio(mw, pcm, per, err);
        }
    }
    if (rc == 0) {
        CHECK_INT(media_writer_frames(mw), frames);
        rc = media_writer_finish(mw, err);
    }
    media_writer_free(mw);
    return rc;
}

static int write_clip(const char *path, int w, int h, int frames,
                      struct errmsg *err)
{
    return write_clip_audio(path, w, h, frames, 0, err);
}

static void writer_exact_clip(void)
{
    char a[64], b[64];
    snprintf(a, sizeof(a), "%s/a.mp4", dir);
    snprintf(b, sizeof(b), "%s/b.mp4", dir);
    struct errmsg err = { 0 };
    CHECK_INT(write_clip(a, 160, 96, 3 * MEDIA_FPS, &err), 0);
    struct mp4_info info;
    CHECK_INT(mp4_probe(a, &info), 0);
    CHECK_STR(info.codec, "h264");
    CHECK_STR(info.pix_fmt, "yuv420p");
    CHECK_STR(info.r_frame_rate, "24/1");
    CHECK_INT(info.width, 160);
    CHECK_INT(info.height, 96);
    CHECK_INT(info.nb_frames, 72);
    CHECK(info.format_duration > 2.95 && info.format_duration < 3.05);
    CHECK(info.stream_duration > 2.95 && info.stream_duration < 3.05);
    CHECK(mp4_moov_first(a));

    /* The same frames give the same bytes; one frame less does not. */
    CHECK_INT(write_clip(b, 160, 96, 3 * MEDIA_FPS, &err), 0);
    CHECK(mp4_same(a, b));
    CHECK_INT(write_clip(b, 160, 96, 3 * MEDIA_FPS - 1, &err), 0);
    CHECK(!mp4_same(a, b));
    CHECK_INT(mp4_probe(b, &info), 0);
    CHECK_INT(info.nb_frames, 71);

    /* No version string of the encoders in the file. */
    size_t n;
    unsigned char *d = mp4_slurp(a, &n);
    CHECK(d && !memmem(d, n, "x264", 4) && !memmem(d, n, "Lavf", 4) &&
          !memmem(d, n, "Lavc", 4));
    free(d);
    unlink(a);
    unlink(b);
}

static void writer_audio_track(void)
{
    char a[64], b[64];
    snprintf(a, sizeof(a), "%s/a.mp4", dir);
    snprintf(b, sizeof(b), "%s/b.mp4", dir);
    struct errmsg err = { 0 };
    const int per = MEDIA_AUDIO_RATE / MEDIA_FPS;

    /* Without audio pushed: a silent track exactly as long as the video
     * (the video stays the first stream). */
    CHECK_INT(write_clip(a, 160, 96, 3 * MEDIA_FPS + 5, &err), 0);
    struct mp4_audio au;
    struct mp4_info info;
    double want = 3 + 5.0 / MEDIA_FPS, rms = -1;
    CHECK_INT(mp4_probe(a, &info), 0);
    CHECK_STR(info.codec, "h264");
    CHECK_INT(mp4_probe_audio(a, &au), 0);
    CHECK_STR(au.codec, "aac");
    CHECK_INT(au.sample_rate, 48000);
    CHECK_INT(au.channels, 2);
    CHECK(au.duration > want - 0.001 && au.duration < want + 0.001);
    CHECK(info.format_duration > want - 0.001 &&
          info.format_duration < want + 0.001);
    CHECK_INT(mp4_audio_rms(a, 10, &rms), 0);
    CHECK(rms < 1);

    /* A frame's worth after each frame: heard, same length. */
    CHECK_INT(write_clip_audio(a, 160, 96, 3 * MEDIA_FPS, per, &err), 0);
    CHECK_INT(mp4_probe_audio(a, &au), 0);
    CHECK(au.duration > 2.999 && au.duration < 3.001);
    CHECK_INT(mp4_audio_rms(a, 10, &rms), 0);
    CHECK(rms > 1000); /* the square wave, left only, mixed to mono */
    CHECK(mp4_moov_first(a));
    /* The same samples give the same bytes. */
    CHECK_INT(write_clip_audio(b, 160, 96, 3 * MEDIA_FPS, per, &err), 0);
    CHECK(mp4_same(a, b));

    /* Twice a frame's worth after each frame: the track never runs ahead
     * of the video, and still ends with it. */
    CHECK_INT(write_clip_audio(b, 160, 96, 3 * MEDIA_FPS, 2 * per, &err), 0);
    CHECK_INT(mp4_probe_audio(b, &au), 0);
    CHECK(au.duration > 2.999 && au.duration < 3.001);
    CHECK(!mp4_same(a, b));
    unlink(a);
    unlink(b);
}

static void writer_errors(void)
{
    struct media_writer *mw = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(media_writer_new("/nonexistent-dir/x/out.mp4", 160, 96, MEDIA_FPS,
                               &mw, &err),
              ERR_IO);
    CHECK(mw == NULL);
    CHECK(strstr(err.text, "/nonexistent-dir/x/out.mp4") != NULL);

    char path[64];
    snprintf(path, sizeof(path), "%s/bad.mp4", dir);
    CHECK_INT(media_writer_new(path, 161, 96, MEDIA_FPS, &mw, &err),
              ERR_INVALID_PARAMETER);
    CHECK_INT(media_writer_new(path, 8, 96, MEDIA_FPS, &mw, &err),
              ERR_INVALID_PARAMETER);
    CHECK_INT(media_writer_new(path, 160, 96, 0, &mw, &err),
              ERR_INVALID_PARAMETER);
    CHECK(mw == NULL);
    media_writer_free(NULL);

    /* Abandoned halfway: freed without finishing, nothing leaks. */
    CHECK_INT(media_writer_new(path, 160, 96, MEDIA_FPS, &mw, &err), 0);
    for (int i = 0; mw && i < 10; i++) {
        struct media_frame f;
        CHECK_INT(media_writer_frame(mw, &f, &err), 0);
        draw_test_frame(&f, i);
        CHECK_INT(media_writer_push(mw, &err), 0);
    }
    media_writer_free(mw);
    unlink(path);
}

int main(void)
{
    unit_suite = "media";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(rgb_conversion);
    RUN(fill_and_clip);
    RUN(blending);
    RUN(text);
    RUN(watermark_stays_in_its_box);
    RUN(pictures_and_windows);
    RUN(mixing);
    RUN(magnified_view);
    RUN(view_matches_definition);
    RUN(writer_exact_clip);
    RUN(writer_audio_track);
    RUN(writer_errors);
    rmdir(dir);
    return UNIT_END();
}
