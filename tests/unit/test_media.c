/*
 * Unit tests of src/media: the drawing primitives on in-memory frames, and
 * the MP4 writer checked from outside with ffprobe (size, rate, exact
 * duration, faststart) and byte for byte (determinism).
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

static int write_clip(const char *path, int w, int h, int frames,
                      struct errmsg *err)
{
    struct media_writer *mw = NULL;
    int rc = media_writer_new(path, w, h, MEDIA_FPS, &mw, err);
    for (int i = 0; rc == 0 && i < frames; i++) {
        struct media_frame f;
        rc = media_writer_frame(mw, &f, err);
        if (rc == 0) {
            CHECK(f.width == w && f.height == h);
            draw_test_frame(&f, i);
            rc = media_writer_push(mw, err);
        }
    }
    if (rc == 0) {
        CHECK_INT(media_writer_frames(mw), frames);
        rc = media_writer_finish(mw, err);
    }
    media_writer_free(mw);
    return rc;
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

    /* No version string of the encoder in the file. */
    size_t n;
    unsigned char *d = mp4_slurp(a, &n);
    CHECK(d && !memmem(d, n, "x264", 4) && !memmem(d, n, "Lavf", 4));
    free(d);
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
    RUN(writer_exact_clip);
    RUN(writer_errors);
    rmdir(dir);
    return UNIT_END();
}
