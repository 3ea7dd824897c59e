/*
 * Unit tests of src/media's readers: images and videos made with the
 * ffmpeg CLI in a temporary directory are recognised by content, measured,
 * checked against docs/api.md s.3.6, decoded, fitted and read back; files
 * that are not what they claim are refused with the right code, naming the
 * input and the measured value.
 */
#include "../../src/media/media.h"
#include "mp4probe.h"
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-media-input-XXXXXX";

static const char *path_of(const char *name)
{
    static char path[8][96];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    return p;
}

/* Fixtures, made once in main(). */
static bool fixtures_ok;

static void make_fixtures(void)
{
    int rc = 0;
    /* Stills: the same 640x480 picture in three formats. */
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x480 -frames:v 1 '%s'",
                   path_of("pic.jpg"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x480 -frames:v 1 '%s'",
                   path_of("pic.png"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x480 -frames:v 1 '%s'",
                   path_of("pic.webp"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x480:rate=5 -t 1 -f apng "
                   "'%s'",
                   path_of("anim.png"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=200x200 -frames:v 1 '%s'",
                   path_of("small.png"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=500x350 -frames:v 1 '%s'",
                   path_of("ref350.png"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=900x300 -frames:v 1 '%s'",
                   path_of("wide.png"));
    /* Red, green, blue thirds: fitting to a square keeps the green one. */
    rc |= mp4_make("-f lavfi -i color=red:s=300x300 -f lavfi -i "
                   "color=0x00ff00:s=300x300 -f lavfi -i color=blue:s=300x300 "
                   "-filter_complex hstack=3 -frames:v 1 '%s'",
                   path_of("thirds.png"));
    /* Videos: 4 s with a 440 Hz tone, 4 s silent in MOV, 2 s, small,
     * slow. */
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i "
                   "sine=frequency=440:sample_rate=44100 -t 4 -c:v libx264 "
                   "-preset ultrafast -c:a aac -shortest '%s'",
                   path_of("tone.mp4"));
    rc |=
        mp4_make("-f lavfi -i testsrc2=size=640x360:rate=25 -t 4 -c:v libx264 "
                 "-preset ultrafast -f mov '%s'",
                 path_of("silent.mov"));
    rc |=
        mp4_make("-f lavfi -i testsrc2=size=640x360:rate=30 -t 2 -c:v libx264 "
                 "-preset ultrafast '%s'",
                 path_of("short.mp4"));
    rc |=
        mp4_make("-f lavfi -i testsrc2=size=320x240:rate=30 -t 3 -c:v libx264 "
                 "-preset ultrafast '%s'",
                 path_of("tiny.mp4"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x360:rate=8 -t 4 -c:v libx264 "
                   "-preset ultrafast '%s'",
                   path_of("slow.mp4"));
    /* Frame k is a flat grey of luma 16 + 5k, 10 fps, lossless. */
    rc |= mp4_make("-f lavfi -i color=black:s=640x360:r=10 -t 4 -vf "
                   "\"geq=lum='16+5*N':cb=128:cr=128\" -c:v libx264 -qp 0 "
                   "-preset ultrafast -pix_fmt yuv420p '%s'",
                   path_of("ramp.mp4"));
    fixtures_ok = rc == 0;
    CHECK(fixtures_ok);
}

static int probe(const char *name, enum task_media_kind want,
                 struct task_media_info *info, struct errmsg *err)
{
    return media_probe_file(path_of(name), want, "media[0]", info, err);
}

static void images_by_content(void)
{
    static const char *const names[] = { "pic.jpg", "pic.png", "pic.webp",
                                         "anim.png" };
    static const char *const formats[] = { "jpeg", "png", "webp", "png" };
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        struct task_media_info info;
        struct errmsg err = { 0 };
        CHECK_INT(probe(names[i], TASK_MEDIA_IMAGE, &info, &err), 0);
        CHECK(info.kind == TASK_MEDIA_IMAGE);
        CHECK_STR(info.format, formats[i]);
        CHECK_INT(info.width, 640);
        CHECK_INT(info.height, 480);
    }

    /* The name means nothing: a PNG called .jpg, a JPEG called .mp4. */
    struct task_media_info info;
    struct errmsg err = { 0 };
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && cp '%s' '%s'",
             path_of("pic.png"), path_of("png.jpg"), path_of("pic.jpg"),
             path_of("jpeg.mp4"));
    CHECK(system(cmd) == 0);
    CHECK_INT(probe("png.jpg", TASK_MEDIA_IMAGE, &info, &err), 0);
    CHECK_STR(info.format, "png");
    CHECK_INT(probe("jpeg.mp4", TASK_MEDIA_IMAGE, &info, &err), 0);
    CHECK_STR(info.format, "jpeg");

    /* From memory, the fuzzer's way in. */
    size_t n;
    unsigned char *d = mp4_slurp(path_of("pic.webp"), &n);
    CHECK_INT(media_probe_mem(d, n, TASK_MEDIA_IMAGE, "media[2]", &info, &err),
              0);
    CHECK_STR(info.format, "webp");
    /* Cut short: no longer a picture, never a crash. */
    int rc = media_probe_mem(d, 40, TASK_MEDIA_IMAGE, "media[2]", &info, &err);
    CHECK_INT(rc, ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK(strstr(err.text, "media[2]") != NULL);
    free(d);
}

static void not_images(void)
{
    struct task_media_info info;
    struct errmsg err = { 0 };
    static const char text[] = "hello, I am not a PNG at all\n";
    CHECK_INT(mp4_write(path_of("text.png"), text, sizeof(text) - 1), 0);
    CHECK_INT(probe("text.png", TASK_MEDIA_IMAGE, &info, &err),
              ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK(strstr(err.text, "media[0]") &&
          strstr(err.text, "JPEG, PNG or WEBP"));

    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 7919 % 251);
    CHECK_INT(media_probe_mem(junk, sizeof(junk), TASK_MEDIA_IMAGE, "media[1]",
                              &info, &err),
              ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK_INT(
        media_probe_mem(junk, 0, TASK_MEDIA_IMAGE, "media[1]", &info, &err),
        ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK_INT(
        media_probe_mem(NULL, 0, TASK_MEDIA_VIDEO, "media[1]", &info, &err),
        ERR_UNSUPPORTED_FILE_FORMAT);

    /* A video is not an image, nor the other way round. */
    CHECK_INT(probe("tone.mp4", TASK_MEDIA_IMAGE, &info, &err),
              ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK_INT(probe("pic.jpg", TASK_MEDIA_VIDEO, &info, &err),
              ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK(strstr(err.text, "MP4 or MOV") != NULL);

    /* A PNG header claiming 9000x9000: refused before decoding, with the
     * size it claims. */
    static const unsigned char big[] = {
        0x89, 'P',  'N', 'G', '\r', '\n', 26, '\n', 0,    0, 0,
        13,   'I',  'H', 'D', 'R',  0,    0,  0x23, 0x28, 0, 0,
        0x23, 0x28, 8,   2,   0,    0,    0,  0,    0,    0, 0,
    };
    CHECK_INT(media_probe_mem(big, sizeof(big), TASK_MEDIA_IMAGE, "media[0]",
                              &info, &err),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "9000x9000") != NULL);

    /* A missing file is our fault (the worker fetched it), not the
     * user's. */
    CHECK_INT(probe("nonexistent.png", TASK_MEDIA_IMAGE, &info, &err), ERR_IO);
}

/* What task_media_check judges (test_task_rules.c) is what is stored. */
static void image_sizes(void)
{
    static const struct {
        const char *name;
        int w, h;
    } want[] = { { "small.png", 200, 200 },
                 { "ref350.png", 500, 350 },
                 { "wide.png", 900, 300 } };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        struct task_media_info info;
        struct errmsg err = { 0 };
        CHECK_INT(probe(want[i].name, TASK_MEDIA_IMAGE, &info, &err), 0);
        CHECK(info.kind == TASK_MEDIA_IMAGE);
        CHECK_INT(info.width, want[i].w);
        CHECK_INT(info.height, want[i].h);
        CHECK(info.duration_s == 0 && info.fps == 0 && !info.has_audio);
    }
}

/* Mean of a plane's w x h samples. */
static int plane_mean(const struct media_frame *f, int p)
{
    int w = p ? (f->width + 1) / 2 : f->width;
    int h = p ? (f->height + 1) / 2 : f->height;
    long sum = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            sum += f->data[p][(size_t)y * f->linesize[p] + x];
    return (int)(sum / ((long)w * h));
}

static void image_fit(void)
{
    struct media_src src = { .path = path_of("thirds.png") };
    struct media_image *img = NULL;
    struct media_picture pic;
    struct errmsg err = { 0 };
    CHECK_INT(media_image_open(&src, "media[0]", &img, &err), 0);
    if (!img)
        return;
    CHECK_INT(media_image_info(img)->width, 900);
    /* 900x300 into a square: the middle 300x300, all green. */
    CHECK_INT(media_image_fit(img, 100, 100, &pic, &err), 0);
    struct media_yuv green = media_rgb(0, 255, 0);
    CHECK(abs(plane_mean(&pic.f, 0) - green.y) <= 2);
    CHECK(abs(plane_mean(&pic.f, 1) - green.u) <= 2);
    CHECK(abs(plane_mean(&pic.f, 2) - green.v) <= 2);
    media_picture_fini(&pic);
    /* Into a wide strip: all three, red at the left edge. */
    CHECK_INT(media_image_fit(img, 300, 50, &pic, &err), 0);
    struct media_yuv red = media_rgb(255, 0, 0);
    CHECK(abs(pic.f.data[0][10 * pic.f.linesize[0] + 4] - red.y) <= 2);
    CHECK(abs(pic.f.data[2][5 * pic.f.linesize[2] + 2] - red.v) <= 2);
    media_picture_fini(&pic);
    /* Odd sizes are refused, nothing allocated. */
    CHECK_INT(media_image_fit(img, 101, 100, &pic, &err), ERR_ALGO);
    media_image_free(img);
    media_image_free(NULL);
}

static void videos(void)
{
    struct task_media_info info;
    struct errmsg err = { 0 };
    CHECK_INT(probe("tone.mp4", TASK_MEDIA_VIDEO, &info, &err), 0);
    CHECK(info.kind == TASK_MEDIA_VIDEO);
    CHECK_STR(info.format, "mov");
    CHECK_STR(info.codec, "h264");
    CHECK_INT(info.width, 640);
    CHECK_INT(info.height, 360);
    CHECK(info.duration_s > 3.95 && info.duration_s < 4.05);
    CHECK(info.fps > 29.9 && info.fps < 30.1);
    CHECK(info.has_audio);

    CHECK_INT(probe("silent.mov", TASK_MEDIA_VIDEO, &info, &err), 0);
    CHECK(!info.has_audio);
    CHECK(info.fps > 24.9 && info.fps < 25.1);

    /* The measurements the rules refuse (test_task_rules.c). */
    CHECK_INT(probe("short.mp4", TASK_MEDIA_VIDEO, &info, &err), 0);
    CHECK(info.duration_s > 1.95 && info.duration_s < 2.05);

    CHECK_INT(probe("tiny.mp4", TASK_MEDIA_VIDEO, &info, &err), 0);
    CHECK_INT(info.width, 320);
    CHECK_INT(info.height, 240);

    CHECK_INT(probe("slow.mp4", TASK_MEDIA_VIDEO, &info, &err), 0);
    CHECK(info.fps > 7.99 && info.fps < 8.01);
    CHECK(info.kind == TASK_MEDIA_VIDEO);
}

static void truncated_videos(void)
{
    struct task_media_info info;
    struct errmsg err = { 0 };
    size_t n;
    unsigned char *d = mp4_slurp(path_of("tone.mp4"), &n);
    CHECK(d && n > 10000);
    if (!d)
        return;
    /* moov at the end (ffmpeg's default): half a file has no index. */
    CHECK_INT(mp4_write(path_of("half.mp4"), d, n / 2), 0);
    CHECK_INT(probe("half.mp4", TASK_MEDIA_VIDEO, &info, &err),
              ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK(strstr(err.text, "media[0]") != NULL);
    free(d);

    /* moov first: the index survives, the data it points to does not. */
    CHECK_INT(mp4_make("-i '%s' -c copy -movflags +faststart '%s'",
                       path_of("tone.mp4"), path_of("fast.mp4")),
              0);
    d = mp4_slurp(path_of("fast.mp4"), &n);
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK_INT(mp4_write(path_of("fast-cut.mp4"), d, n * 2 / 3), 0);
    CHECK_INT(probe("fast-cut.mp4", TASK_MEDIA_VIDEO, &info, &err),
              ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK(strstr(err.text, "truncated") != NULL);
    /* Every prefix is refused or measured, never a crash. */
    for (size_t cut = 0; cut < n; cut += n / 37 + 1) {
        int rc =
            media_probe_mem(d, cut, TASK_MEDIA_VIDEO, "media[0]", &info, &err);
        CHECK(rc == ERR_UNSUPPORTED_FILE_FORMAT || rc == 0);
    }
    free(d);
}

static void video_frames_by_time(void)
{
    struct media_src src = { .path = path_of("ramp.mp4") };
    struct media_video *v = NULL;
    struct errmsg err = { 0 };
    if (!fixtures_ok)
        return;
    CHECK_INT(media_video_open(&src, "media[0]", &v, &err), 0);
    if (!v)
        return;
    CHECK(!media_video_info(v)->has_audio);
    /* Output frame i at 24 fps shows input frame floor(i * 10 / 24). */
    for (int i = 0; i < 96; i += 5) {
        struct media_frame f;
        CHECK_INT(media_video_frame_at(v, i, 24, 320, 180, &f, &err), 0);
        CHECK(f.width == 320 && f.height == 180);
        int want = 16 + 5 * (i * 10 / 24);
        int got = plane_mean(&f, 0);
        CHECK(abs(got - want) <= 1);
        if (abs(got - want) > 1)
            fprintf(stderr, "  frame %d: luma %d, want %d\n", i, got, want);
    }
    /* Past the end: the last frame stays. */
    struct media_frame f;
    CHECK_INT(media_video_frame_at(v, 10, 1, 320, 180, &f, &err), 0);
    CHECK(abs(plane_mean(&f, 0) - (16 + 5 * 39)) <= 1);
    int16_t pcm[64];
    int got = -1;
    CHECK_INT(media_video_audio(v, pcm, 64, &got, &err), 0);
    CHECK_INT(got, 0);
    media_video_free(v);
}

static void video_audio(void)
{
    struct media_src src = { .path = path_of("tone.mp4") };
    struct media_video *v = NULL;
    struct errmsg err = { 0 };
    if (!fixtures_ok)
        return;
    CHECK_INT(media_video_open(&src, "media[0]", &v, &err), 0);
    if (!v)
        return;
    /* 4 s at 48 kHz, in chunks of a frame's worth. */
    int16_t pcm[2 * 2000];
    long total = 0;
    double sum = 0;
    for (;;) {
        int got = 0;
        CHECK_INT(media_video_audio(v, pcm, 2000, &got, &err), 0);
        for (int i = 0; i < 2 * got; i++)
            sum += (double)pcm[i] * pcm[i];
        total += got;
        if (got < 2000)
            break;
    }
    CHECK(labs(total - 4 * 48000) < 2048);
    /* ffmpeg's sine source is 1/8 of full scale: RMS about 2900. */
    double rms = total ? sqrt(sum / (2.0 * (double)total)) : 0;
    CHECK(rms > 2000 && rms < 4000);
    /* Frames can be read alongside (the audio has its own reader). */
    struct media_frame f;
    CHECK_INT(media_video_frame_at(v, 3, 1, 64, 36, &f, &err), 0);
    media_video_free(v);
    media_video_free(NULL);
}

int main(void)
{
    unit_suite = "media_input";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(make_fixtures);
    RUN(images_by_content);
    RUN(not_images);
    RUN(image_sizes);
    RUN(image_fit);
    RUN(videos);
    RUN(truncated_videos);
    RUN(video_frames_by_time);
    RUN(video_audio);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return UNIT_END();
}
