/*
 * Unit tests of src/engine: the registry and the sandbox engine, all four
 * task kinds. Inputs are made with the ffmpeg CLI; renders go to a
 * temporary directory and are checked from outside, with ffprobe (H.264 and
 * AAC, docs/api.md s.4 sizes, 24 fps, exact duration, faststart) and the
 * ffmpeg CLI (the watermark, the first frame, the audio, decoded). A
 * resident engine's copy (a shell script) tells the room watcher. The
 * upstream engine has its own program, test_engine_upstream.c.
 */
#define ENGINE_FIXTURE_DIR "/tmp/paddock-engine-XXXXXX"
#include "../../src/media/media.h"
#include "engine_fixture.h"
#include "mp4probe.h"
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct progress_log {
    int calls, first, last;
    bool monotonic;
    int stop_at; /* set the stop flag once progress reaches this; 0: never */
    atomic_bool *stop;
};

static void on_progress(void *arg, int percent)
{
    struct progress_log *l = arg;
    if (l->calls == 0)
        l->first = percent;
    else if (percent < l->last)
        l->monotonic = false;
    l->last = percent;
    l->calls++;
    if (l->stop_at && percent >= l->stop_at)
        atomic_store(l->stop, true);
}

/* Input fixtures, made once: a path per name, kept for the whole run. */
static const char *fixture(const char *name)
{
    static char paths[16][96], names[16][32];
    static int n;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return paths[i];
    if (n == 16)
        return "/nonexistent";
    snprintf(names[n], sizeof(names[0]), "%s", name);
    snprintf(paths[n], sizeof(paths[0]), "%s/in-%s", dir, name);
    return paths[n++];
}

static bool fixtures_ok;

static void make_fixtures(void)
{
    int rc = 0;
    rc |= mp4_make("-f lavfi -i mandelbrot=size=1024x768 -frames:v 1 '%s'",
                   fixture("photo.jpg"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=200x200 -frames:v 1 '%s'",
                   fixture("small.png"));
    rc |= mp4_make("-f lavfi -i color=red:s=800x600 -frames:v 1 '%s'",
                   fixture("red.png"));
    rc |= mp4_make("-f lavfi -i color=0x00ff00:s=800x600 -frames:v 1 '%s'",
                   fixture("green.jpg"));
    rc |= mp4_make("-f lavfi -i color=blue:s=600x800 -frames:v 1 '%s'",
                   fixture("blue.webp"));
    /* A loud 440 Hz tone (RMS about 17000 of 32768) under 4 s of video. */
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i "
                   "sine=frequency=440:sample_rate=44100,volume=6 -t 4 "
                   "-c:v libx264 -preset ultrafast -c:a aac -shortest '%s'",
                   fixture("loud.mp4"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x360:rate=10 -t 20 -c:v "
                   "libx264 -preset ultrafast '%s'",
                   fixture("long.mp4"));
    rc |= mp4_make("-f lavfi -i testsrc2=size=640x360:rate=30 -t 2 -c:v "
                   "libx264 -preset ultrafast '%s'",
                   fixture("short.mp4"));
    static const char text[] = "<html>not a video</html>\n";
    rc |= mp4_write(fixture("page.mp4"), text, sizeof(text) - 1);
    fixtures_ok = rc == 0;
    CHECK(fixtures_ok);
}

/* A job of another kind, its media added with add_media. */
static void add_media(struct job *job, struct job_inputs *in,
                      enum job_media_type type, const char *name)
{
    job->media[job->n_media].type = type;
    job->media[job->n_media].url = "https://example.com/media";
    job->n_media++;
    in->path[in->n++] = fixture(name);
}

static int render_in(const struct job *job, const struct job_inputs *in,
                     const char *path, struct job_result *res,
                     struct errmsg *err)
{
    atomic_bool stop = false;
    struct job_ctl ctl = { .stop = &stop };
    int rc = engine_run(sandbox, job, in, path, &ctl, res, err);
    if (rc < 0)
        fprintf(stderr, "  render: %s\n", errmsg_text(err));
    return rc;
}

/* H.264 + AAC, w x h, 24 fps, `seconds` long within 0.05 s, moov first. */
static void check_file(const char *path, int w, int h, double seconds)
{
    struct mp4_info info;
    struct mp4_audio au;
    CHECK_INT(mp4_probe(path, &info), 0);
    CHECK_STR(info.codec, "h264");
    CHECK_STR(info.pix_fmt, "yuv420p");
    CHECK_STR(info.r_frame_rate, "24/1");
    CHECK_INT(info.width, w);
    CHECK_INT(info.height, h);
    CHECK_INT(info.nb_frames, (long)(seconds * 24 + 0.5));
    CHECK(info.format_duration > seconds - 0.05 &&
          info.format_duration < seconds + 0.05);
    CHECK_INT(mp4_probe_audio(path, &au), 0);
    CHECK_STR(au.codec, "aac");
    CHECK_INT(au.sample_rate, 48000);
    CHECK_INT(au.channels, 2);
    CHECK(au.duration > seconds - 0.05 && au.duration < seconds + 0.05);
    CHECK(mp4_moov_first(path));
}

static void registry(void)
{
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(engine_new("sandbox", &e, &err), 0);
    CHECK(e != NULL);
    if (e)
        CHECK_STR(engine_name(e), "sandbox");
    engine_free(e);
    e = (struct engine *)1;
    CHECK_INT(engine_new("dreamworks", &e, &err), ERR_INVALID_PARAMETER);
    CHECK(e == NULL);
    CHECK(strstr(err.text, "dreamworks") && strstr(err.text, "sandbox"));
    engine_free(NULL);
}

/* docs/api.md s.4, written out here rather than read from task/. */
static const struct {
    int resolution;
    const char *ratio;
    int duration, width, height;
} cases[] = {
    { 480, "16:9", 3, 832, 480 },
    { 480, "9:16", 3, 480, 832 },
    { 480, "1:1", 4, 624, 624 },
    { 720, "21:9", 3, 1456, 624 },
};

static void t2v_files_match_the_spec(void)
{
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct job job;
        struct job_result res;
        struct errmsg err = { 0 };
        struct mp4_info info;
        const char *path = path_of("t2v.mp4");
        job_t2v(&job, cases[i].resolution, cases[i].ratio, cases[i].duration,
                12345, "a horse galloping along a beach at dawn");
        int rc = render(&job, path, &res, &err);
        CHECK_INT(rc, 0);
        if (rc < 0) {
            fprintf(stderr, "  %s\n", errmsg_text(&err));
            continue;
        }
        CHECK_INT(mp4_probe(path, &info), 0);
        CHECK_STR(info.codec, "h264");
        CHECK_STR(info.pix_fmt, "yuv420p");
        CHECK_STR(info.r_frame_rate, "24/1");
        CHECK_INT(info.width, cases[i].width);
        CHECK_INT(info.height, cases[i].height);
        CHECK_INT(info.nb_frames, cases[i].duration * 24);
        CHECK(info.format_duration > cases[i].duration - 0.05 &&
              info.format_duration < cases[i].duration + 0.05);
        CHECK(info.stream_duration > cases[i].duration - 0.05 &&
              info.stream_duration < cases[i].duration + 0.05);
        CHECK(mp4_moov_first(path));
        struct mp4_audio au;
        CHECK_INT(mp4_probe_audio(path, &au), 0);
        CHECK_STR(au.codec, "aac");
        CHECK(au.duration > cases[i].duration - 0.05 &&
              au.duration < cases[i].duration + 0.05);
        CHECK(res.usage.output_s == cases[i].duration);
        CHECK(res.usage.input_s == 0);
        CHECK_INT(res.usage.sr, cases[i].resolution);
        CHECK_STR(res.usage.ratio, cases[i].ratio);
        unlink(path);
    }
}

static void same_job_same_bytes(void)
{
    struct job job;
    struct job_result res;
    struct errmsg err = { 0 };
    const char *a = path_of("a.mp4"), *b = path_of("b.mp4");
    const char *c = path_of("c.mp4"), *d = path_of("d.mp4");

    job_t2v(&job, 480, "16:9", 3, 7, "a red kite over green hills");
    CHECK_INT(render(&job, a, &res, &err), 0);
    CHECK_INT(render(&job, b, &res, &err), 0);
    CHECK(mp4_same(a, b));

    job.seed = 8; /* another seed: another video */
    CHECK_INT(render(&job, c, &res, &err), 0);
    CHECK(!mp4_same(a, c));
    job.seed = 7;
    job.prompt = "a red kite over green hill"; /* another prompt too */
    CHECK_INT(render(&job, d, &res, &err), 0);
    CHECK(!mp4_same(a, d));

    /* Visibly different, not just a few bits: the first frames differ
     * by a clear margin on average. */
    size_t n = 832 * 480;
    unsigned char *fa = malloc(n), *fc = malloc(n);
    CHECK_INT(mp4_luma(a, 0, 832, 480, fa), 0);
    CHECK_INT(mp4_luma(c, 0, 832, 480, fc), 0);
    long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += abs(fa[i] - fc[i]);
    CHECK(sum / (long)n >= 10);

    /* And it moves: the last frame is not the first. */
    CHECK_INT(mp4_luma(a, 71, 832, 480, fc), 0);
    sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += abs(fa[i] - fc[i]);
    CHECK(sum / (long)n >= 5);
    free(fa);
    free(fc);
    unlink(a);
    unlink(b);
    unlink(c);
    unlink(d);
}

/* Mean absolute luma difference over a rectangle of two w-wide frames. */
static double region_diff(const unsigned char *a, const unsigned char *b, int w,
                          int x0, int y0, int rw, int rh)
{
    long sum = 0;
    for (int y = y0; y < y0 + rh; y++)
        for (int x = x0; x < x0 + rw; x++)
            sum += abs(a[y * w + x] - b[y * w + x]);
    return (double)sum / ((double)rw * rh);
}

static void watermark_bottom_right_only(void)
{
    struct job job;
    struct job_result res;
    struct errmsg err = { 0 };
    const char *on = path_of("on.mp4"), *off = path_of("off.mp4");
    const int w = 832, h = 480;

    job_t2v(&job, 480, "16:9", 3, 99, "a lighthouse in a storm");
    CHECK_INT(render(&job, on, &res, &err), 0);
    job.watermark = false;
    CHECK_INT(render(&job, off, &res, &err), 0);
    CHECK(!mp4_same(on, off));

    int bx, by, bw, bh;
    media_watermark_box(w, h, "AI GENERATED", &bx, &by, &bw, &bh);
    unsigned char *a = malloc((size_t)w * h), *b = malloc((size_t)w * h);
    for (int frame = 0; frame < 72; frame += 71) {
        CHECK_INT(mp4_luma(on, frame, w, h, a), 0);
        CHECK_INT(mp4_luma(off, frame, w, h, b), 0);
        /* The mark: a large change inside its box ... */
        double mark = region_diff(a, b, w, bx, by, bw, bh);
        /* ... and at most encoder noise in the top-left half. */
        double far = region_diff(a, b, w, 0, 0, w / 2, h / 2);
        CHECK(mark > 20);
        CHECK(far < 2.0);
        if (mark <= 20 || far >= 2.0)
            fprintf(stderr, "  frame %d: mark %.2f far %.2f\n", frame, mark,
                    far);
    }
    free(a);
    free(b);
    unlink(on);
    unlink(off);
}

static void progress_reported(void)
{
    struct job job;
    struct job_result res;
    struct errmsg err = { 0 };
    atomic_bool stop = false;
    struct progress_log log = { .monotonic = true };
    struct job_ctl ctl = { .stop = &stop,
                           .progress = on_progress,
                           .arg = &log };
    const char *path = path_of("p.mp4");

    job_t2v(&job, 480, "4:3", 3, 1, "progress");
    CHECK_INT(engine_run(sandbox, &job, NULL, path, &ctl, &res, &err), 0);
    CHECK(log.calls >= 10);
    CHECK_INT(log.first, 0);
    CHECK_INT(log.last, 100);
    CHECK(log.monotonic);
    unlink(path);
}

static void stop_flag(void)
{
    struct job job;
    struct job_result res;
    struct errmsg err = { 0 };
    atomic_bool stop = true;
    struct job_ctl ctl = { .stop = &stop };
    const char *path = path_of("s.mp4");

    /* Set before the run: nothing is rendered. */
    job_t2v(&job, 1080, "16:9", 15, 1, "never rendered");
    int64_t t0 = clock_mono_ms();
    CHECK_INT(engine_run(sandbox, &job, NULL, path, &ctl, &res, &err),
              ERR_STOPPED);
    CHECK(err.code == ERR_STOPPED && err.text[0]);
    CHECK(clock_mono_ms() - t0 < 500);

    /* Set while rendering (from the progress callback, at 10%): 15 s of
     * 1080p stops after a frame, not after the clip. */
    atomic_store(&stop, false);
    struct progress_log log = { .monotonic = true, .stop_at = 10 };
    log.stop = &stop;
    ctl.progress = on_progress;
    ctl.arg = &log;
    t0 = clock_mono_ms();
    CHECK_INT(engine_run(sandbox, &job, NULL, path, &ctl, &res, &err),
              ERR_STOPPED);
    CHECK(log.last >= 10 && log.last <= 11);
    CHECK(strstr(err.text, "stopped") != NULL);
    CHECK(clock_mono_ms() - t0 < 10000);
    unlink(path); /* the engine leaves the partial file to the caller */
}

static void i2v_starts_on_the_image(void)
{
    struct job job;
    struct job_inputs in;
    struct job_result res;
    struct errmsg err = { 0 };
    const char *a = path_of("i2v-a.mp4"), *b = path_of("i2v-b.mp4");
    const int w = 720, h = 544; /* 1024x768 is 4:3 */
    if (!fixtures_ok)
        return;
    job_kind(&job, &in, TASK_I2V, "happyhorse-1.0-i2v", 3, 5, NULL);
    job.watermark = false;
    add_media(&job, &in, JOB_MEDIA_FIRST_FRAME, "photo.jpg");
    CHECK_INT(render_in(&job, &in, a, &res, &err), 0);
    check_file(a, w, h, 3);
    CHECK(res.usage.output_s == 3 && res.usage.input_s == 0);
    CHECK_INT(res.usage.sr, 480);
    CHECK_STR(res.usage.ratio, ""); /* usage.ratio: t2v and r2v only */

    /* Frame 0 is the picture, fitted: close to ffmpeg's own scaling. */
    unsigned char *f0 = malloc((size_t)w * h), *ref = malloc((size_t)w * h);
    CHECK_INT(mp4_luma(a, 0, w, h, f0), 0);
    CHECK_INT(mp4_fit_luma(fixture("photo.jpg"), w, h, ref), 0);
    double first = mp4_mad(f0, ref, (size_t)w * h);
    CHECK(first < 3);
    /* Then it moves: the last frame is visibly another view. */
    CHECK_INT(mp4_luma(a, 71, w, h, f0), 0);
    double last = mp4_mad(f0, ref, (size_t)w * h);
    CHECK(last > 4);
    if (first >= 3 || last <= 4)
        fprintf(stderr, "  mean difference: first %.2f last %.2f\n", first,
                last);
    free(f0);
    free(ref);

    /* Same inputs and seed, same bytes; a watermark where asked. */
    CHECK_INT(render_in(&job, &in, b, &res, &err), 0);
    CHECK(mp4_same(a, b));
    job.watermark = true;
    CHECK_INT(render_in(&job, &in, b, &res, &err), 0);
    CHECK(!mp4_same(a, b));
    unlink(a);
    unlink(b);
}

/* Mean luma of frame `index` of a w x h file. */
static double mean_luma(const char *path, int index, int w, int h)
{
    unsigned char *f = malloc((size_t)w * h);
    long sum = 0;
    if (mp4_luma(path, index, w, h, f) < 0) {
        free(f);
        return -1;
    }
    for (int i = 0; i < w * h; i++)
        sum += f[i];
    free(f);
    return (double)sum / ((double)w * h);
}

static void r2v_shows_each_reference_in_order(void)
{
    struct job job;
    struct job_inputs in;
    struct job_result res;
    struct errmsg err = { 0 };
    const char *a = path_of("r2v.mp4");
    if (!fixtures_ok)
        return;
    job_kind(&job, &in, TASK_R2V, "happyhorse-1.1-r2v", 4, 9,
             "[Image 1] meets [Image 2] and [Image 3]");
    job.watermark = false;
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "red.png");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "green.jpg");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "blue.webp");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "green.jpg");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "red.png");
    CHECK_INT(render_in(&job, &in, a, &res, &err), 0);
    check_file(a, 832, 480, 4);
    CHECK_STR(res.usage.ratio, "16:9");
    CHECK(res.usage.output_s == 4);
    /* Five slots of 96 / 5 frames (starting at 0, 19, 38, 57, 76), told
     * apart by their luma as ffmpeg reads it back (full range; an RGB
     * picture becomes BT.709, a JPEG or WEBP keeps its own matrix); the
     * first frame of each slot too, and a cross-fade before it. */
    enum { RED, GREEN, BLUE };
    static const double lo[] = { 40, 130, 10 }, hi[] = { 75, 195, 45 };
    static const struct {
        int frame, colour;
    } want[] = { { 0, RED },   { 8, RED },   { 19, GREEN }, { 27, GREEN },
                 { 38, BLUE }, { 46, BLUE }, { 57, GREEN }, { 65, GREEN },
                 { 76, RED },  { 95, RED } };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        double m = mean_luma(a, want[i].frame, 832, 480);
        int c = want[i].colour;
        CHECK(m > lo[c] && m < hi[c]);
        if (!(m > lo[c] && m < hi[c]))
            fprintf(stderr, "  frame %d: luma %.1f\n", want[i].frame, m);
    }
    double mid = mean_luma(a, 16, 832, 480);
    CHECK(mid > 75 && mid < 130);
    unlink(a);
}

static void edit_keeps_or_replaces_the_audio(void)
{
    struct job job;
    struct job_inputs in;
    struct job_result res;
    struct errmsg err = { 0 };
    const char *a = path_of("edit-a.mp4"), *b = path_of("edit-b.mp4");
    double rms;
    if (!fixtures_ok)
        return;
    job_kind(&job, &in, TASK_EDIT, "happyhorse-1.0-video-edit", 0, 3,
             "make it look like dusk");
    job.audio_origin = true;
    add_media(&job, &in, JOB_MEDIA_VIDEO, "loud.mp4");
    CHECK_INT(render_in(&job, &in, a, &res, &err), 0);
    /* 640x360 is 16:9; 4 s at 24 fps. */
    check_file(a, 832, 480, 4);
    CHECK(res.usage.input_s == 4 && res.usage.output_s == 4);
    CHECK_INT(res.usage.sr, 480);
    CHECK_STR(res.usage.ratio, "");
    /* The input's loud tone, not the soft generated chord. */
    CHECK_INT(mp4_audio_rms(a, 4, &rms), 0);
    CHECK(rms > 10000);
    CHECK_INT(render_in(&job, &in, b, &res, &err), 0);
    CHECK(mp4_same(a, b));

    /* audio_setting auto: generated, soft but not silent. */
    job.audio_origin = false;
    CHECK_INT(render_in(&job, &in, b, &res, &err), 0);
    CHECK_INT(mp4_audio_rms(b, 4, &rms), 0);
    CHECK(rms > 300 && rms < 6000);

    /* The picture is the input's, transformed: frame 0 is not the input's
     * frame 0 (graded) but follows it. */
    unsigned char *f0 = malloc(832 * 480), *ref = malloc(832 * 480);
    CHECK_INT(mp4_luma(a, 0, 832, 480, f0), 0);
    CHECK_INT(mp4_fit_luma(fixture("loud.mp4"), 832, 480, ref), 0);
    double d = mp4_mad(f0, ref, 832 * 480);
    CHECK(d > 2 && d < 60);
    free(f0);
    free(ref);

    /* Reference images become tiles: top-left changes, the rest barely. */
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "red.png");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "blue.webp");
    CHECK_INT(render_in(&job, &in, a, &res, &err), 0);
    unsigned char *x = malloc(832 * 480), *y = malloc(832 * 480);
    CHECK_INT(mp4_luma(a, 10, 832, 480, x), 0);
    CHECK_INT(mp4_luma(b, 10, 832, 480, y), 0);
    CHECK(region_diff(x, y, 832, 16, 16, 80, 80) > 20);
    CHECK(region_diff(x, y, 832, 0, 240, 416, 200) < 3);
    free(x);
    free(y);
    unlink(a);
    unlink(b);
}

static void edit_cuts_at_15_seconds(void)
{
    struct job job;
    struct job_inputs in;
    struct job_result res;
    struct errmsg err = { 0 };
    const char *a = path_of("edit-long.mp4");
    if (!fixtures_ok)
        return;
    job_kind(&job, &in, TASK_EDIT, "happyhorse-1.0-video-edit", 0, 4, "rain");
    job.audio_origin = true; /* no audio in the input: generated */
    add_media(&job, &in, JOB_MEDIA_VIDEO, "long.mp4");
    CHECK_INT(render_in(&job, &in, a, &res, &err), 0);
    check_file(a, 832, 480, 15);
    CHECK(res.usage.input_s == 15 && res.usage.output_s == 15);
    double rms;
    CHECK_INT(mp4_audio_rms(a, 15, &rms), 0);
    CHECK(rms > 300);
    unlink(a);
}

static void kinds_check_their_media(void)
{
    struct job job;
    struct job_inputs in;
    struct job_result res;
    struct errmsg err = { 0 };
    const char *out = path_of("bad.mp4");
    if (!fixtures_ok)
        return;

    /* No media at all, or not fetched. */
    static const enum task_kind kinds[] = { TASK_I2V, TASK_R2V, TASK_EDIT };
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        job_kind(&job, &in, kinds[i], "m", 3, 1, "x");
        CHECK_INT(render_in(&job, &in, out, &res, &err), ERR_INVALID_PARAMETER);
        add_media(&job, &in,
                  kinds[i] == TASK_I2V   ? JOB_MEDIA_FIRST_FRAME
                  : kinds[i] == TASK_R2V ? JOB_MEDIA_REFERENCE_IMAGE
                                         : JOB_MEDIA_VIDEO,
                  "photo.jpg");
        CHECK_INT(engine_run(sandbox, &job, NULL, out, NULL, &res, &err),
                  ERR_ALGO);
        CHECK(strstr(err.text, "media[0]") != NULL);
        CHECK(access(out, F_OK) != 0);
    }

    /* docs/api.md s.3.6 on the inputs, with the measured value. */
    job_kind(&job, &in, TASK_I2V, "happyhorse-1.0-i2v", 3, 1, NULL);
    add_media(&job, &in, JOB_MEDIA_FIRST_FRAME, "small.png");
    CHECK_INT(render_in(&job, &in, out, &res, &err), ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "media[0]") && strstr(err.text, "200x200"));

    job_kind(&job, &in, TASK_R2V, "happyhorse-1.0-r2v", 3, 1, "x");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "red.png");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "small.png");
    CHECK_INT(render_in(&job, &in, out, &res, &err), ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "media[1]") && strstr(err.text, "short side"));

    job_kind(&job, &in, TASK_EDIT, "happyhorse-1.0-video-edit", 0, 1, "x");
    add_media(&job, &in, JOB_MEDIA_VIDEO, "short.mp4");
    CHECK_INT(render_in(&job, &in, out, &res, &err), ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "media[0]") && strstr(err.text, "2.0 s"));

    job_kind(&job, &in, TASK_EDIT, "happyhorse-1.0-video-edit", 0, 1, "x");
    add_media(&job, &in, JOB_MEDIA_VIDEO, "page.mp4");
    CHECK_INT(render_in(&job, &in, out, &res, &err),
              ERR_UNSUPPORTED_FILE_FORMAT);
    CHECK(strstr(err.text, "media[0]") != NULL);

    job_kind(&job, &in, TASK_EDIT, "happyhorse-1.0-video-edit", 0, 1, "x");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "red.png");
    add_media(&job, &in, JOB_MEDIA_VIDEO, "loud.mp4");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "photo.jpg.missing");
    CHECK_INT(render_in(&job, &in, out, &res, &err), ERR_IO);
    CHECK(strstr(err.text, "media[2]") != NULL);
    CHECK(access(out, F_OK) != 0);
}

/* engine_run holds the inputs of every backend that reads local files to
 * the same limits, before the backend starts: a command engine's program
 * never sees an input the sandbox would refuse. */
static void every_local_engine_checks_inputs(void)
{
    struct job job;
    struct job_inputs in;
    struct job_result res;
    struct errmsg err = { 0 };
    struct engine *cmd = NULL;
    char prog[300], ran[300], spec[320];
    if (!fixtures_ok)
        return;
    snprintf(ran, sizeof(ran), "%s/program-ran", dir);
    snprintf(prog, sizeof(prog), "%s/mark.sh", dir);
    FILE *f = fopen(prog, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f, "#!/bin/sh\ncat >/dev/null\ntouch '%s'\nexit 3\n", ran);
    fclose(f);
    CHECK(chmod(prog, 0755) == 0);
    snprintf(spec, sizeof(spec), "command:%s", prog);
    CHECK_INT(engine_new(spec, &cmd, &err), 0);
    if (!cmd)
        return;
    CHECK(engine_local_media(cmd));

    static const struct {
        enum task_kind kind;
        const char *model;
        enum job_media_type type;
        const char *file;
        int code;
        const char *says;
    } bad[] = {
        { TASK_I2V, "happyhorse-1.0-i2v", JOB_MEDIA_FIRST_FRAME, "small.png",
          ERR_INVALID_PARAMETER, "media[0] image is 200x200" },
        { TASK_EDIT, "happyhorse-1.0-video-edit", JOB_MEDIA_VIDEO, "short.mp4",
          ERR_INVALID_PARAMETER, "media[0] video is 2.0 s long" },
        { TASK_EDIT, "happyhorse-1.0-video-edit", JOB_MEDIA_VIDEO, "page.mp4",
          ERR_UNSUPPORTED_FILE_FORMAT, "media[0] is not an MP4 or MOV" },
        { TASK_I2V, "happyhorse-1.0-i2v", JOB_MEDIA_FIRST_FRAME, "loud.mp4",
          ERR_UNSUPPORTED_FILE_FORMAT, "media[0]" },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        job_kind(&job, &in, bad[i].kind, bad[i].model, 3, 1, "x");
        add_media(&job, &in, bad[i].type, bad[i].file);
        unlink(ran);
        CHECK_INT(
            engine_run(cmd, &job, &in, path_of("cmd.mp4"), NULL, &res, &err),
            bad[i].code);
        CHECK(strstr(err.text, bad[i].says) != NULL);
        CHECK(access(ran, F_OK) != 0); /* the program was not started */
    }

    /* r2v references need a 400 px short side; a good input reaches the
     * program (which then fails on its own). */
    job_kind(&job, &in, TASK_R2V, "happyhorse-1.0-r2v", 3, 1, "x");
    add_media(&job, &in, JOB_MEDIA_REFERENCE_IMAGE, "red.png");
    unlink(ran);
    CHECK_INT(engine_run(cmd, &job, &in, path_of("cmd.mp4"), NULL, &res, &err),
              ERR_ALGO);
    CHECK(access(ran, F_OK) == 0);

    /* A stop set while the inputs are read ends the run there. */
    atomic_bool stop = true;
    struct job_ctl ctl = { .stop = &stop };
    unlink(ran);
    CHECK_INT(engine_run(cmd, &job, &in, path_of("cmd.mp4"), &ctl, &res, &err),
              ERR_STOPPED);
    CHECK(access(ran, F_OK) != 0);
    unlink(ran);
    unlink(path_of("cmd.mp4"));
    engine_free(cmd);
}

static void inputs_stop_and_progress(void)
{
    struct job job;
    struct job_inputs in;
    struct job_result res;
    struct errmsg err = { 0 };
    atomic_bool stop = false;
    struct progress_log log = { .monotonic = true, .stop_at = 50 };
    log.stop = &stop;
    struct job_ctl ctl = { .stop = &stop,
                           .progress = on_progress,
                           .arg = &log };
    if (!fixtures_ok)
        return;
    job_kind(&job, &in, TASK_EDIT, "happyhorse-1.0-video-edit", 0, 1, "x");
    add_media(&job, &in, JOB_MEDIA_VIDEO, "long.mp4");
    CHECK_INT(
        engine_run(sandbox, &job, &in, path_of("s.mp4"), &ctl, &res, &err),
        ERR_STOPPED);
    CHECK_INT(log.first, 0);
    CHECK(log.last >= 50 && log.last <= 51 && log.monotonic);
    unlink(path_of("s.mp4"));
}

static void bad_inputs(void)
{
    struct job job;
    struct job_result res;
    struct errmsg err = { 0 };

    job_t2v(&job, 480, "16:9", 3, 1, "nowhere");
    CHECK_INT(render(&job, "/nonexistent-dir/sub/out.mp4", &res, &err), ERR_IO);
    CHECK(strstr(err.text, "/nonexistent-dir/sub/out.mp4") != NULL);

    job_t2v(&job, 480, "2:1", 3, 1, "bad ratio");
    CHECK_INT(render(&job, path_of("r.mp4"), &res, &err),
              ERR_INVALID_PARAMETER);
    job_t2v(&job, 540, "16:9", 3, 1, "bad tier");
    CHECK_INT(render(&job, path_of("r.mp4"), &res, &err),
              ERR_INVALID_PARAMETER);
    job_t2v(&job, 480, "16:9", 0, 1, "no duration");
    CHECK_INT(render(&job, path_of("r.mp4"), &res, &err),
              ERR_INVALID_PARAMETER);
    CHECK(access(path_of("r.mp4"), F_OK) != 0);

    /* No prompt at all still renders (the hash takes it as empty). */
    job_t2v(&job, 480, "9:21", 3, 1, NULL);
    CHECK_INT(render(&job, path_of("n.mp4"), &res, &err), 0);
    unlink(path_of("n.mp4"));
}

/* ------------------------------------------------------------ resident */

struct room_seen {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
};

static void on_room(void *arg)
{
    struct room_seen *r = arg;
    pthread_mutex_lock(&r->lock);
    r->calls++;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* A copy that becomes ready tells the room watcher (the worker's
 * dispatcher then claims at once instead of at its next look). */
static void resident_tells_when_a_copy_is_ready(void)
{
    struct errmsg err = { 0 };
    struct engine *e = NULL;
    struct room_seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER,
                              .cond = PTHREAD_COND_INITIALIZER };
    const char *prog = path_of("ready.sh");
    FILE *f = fopen(prog, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("#!/bin/sh\necho '{\"type\": \"ready\"}'\n"
          "while read -r line; do :; done\n",
          f);
    fclose(f);
    chmod(prog, 0755);
    char spec[128];
    snprintf(spec, sizeof(spec), "resident:%s", prog);
    CHECK_INT(engine_new(spec, &e, &err), 0);
    if (!e)
        return;
    CHECK_INT(engine_configure(e, 0, NULL, 0, &err), 0);
    engine_watch_room(e, on_room, &seen);
    CHECK_INT(engine_capacity(e, 0), 0);       /* nothing loaded yet */
    CHECK_INT(engine_check(e, NULL, &err), 0); /* starts the copy */
    /* A hang guard, not a speed limit: the copy is ready at once. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&seen.lock);
    while (seen.calls == 0 &&
           pthread_cond_timedwait(&seen.cond, &seen.lock, &until) == 0)
        ;
    int calls = seen.calls;
    pthread_mutex_unlock(&seen.lock);
    CHECK_INT(calls, 1);
    CHECK_INT(engine_capacity(e, 0), 1);
    engine_watch_room(e, NULL, NULL);
    engine_free(e);
}

int main(void)
{
    unit_suite = "engine";
    if (engine_fixture_init() < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(registry);
    RUN(t2v_files_match_the_spec);
    RUN(same_job_same_bytes);
    RUN(watermark_bottom_right_only);
    RUN(progress_reported);
    RUN(stop_flag);
    RUN(bad_inputs);
    RUN(make_fixtures);
    RUN(i2v_starts_on_the_image);
    RUN(r2v_shows_each_reference_in_order);
    RUN(edit_keeps_or_replaces_the_audio);
    RUN(edit_cuts_at_15_seconds);
    RUN(kinds_check_their_media);
    RUN(every_local_engine_checks_inputs);
    RUN(inputs_stop_and_progress);
    RUN(resident_tells_when_a_copy_is_ready);
    engine_fixture_fini();
    return UNIT_END();
}
