/*
 * Unit tests of src/engine: the registry and the sandbox engine, all four
 * task kinds. Inputs are made with the ffmpeg CLI; renders go to a
 * temporary directory and are checked from outside, with ffprobe (H.264 and
 * AAC, docs/api.md s.4 sizes, 24 fps, exact duration, faststart) and the
 * ffmpeg CLI (the watermark, the first frame, the audio, decoded). The
 * upstream engine runs against a fake upstream served in this process.
 */
#include "../../src/engine/engine.h"
#include "../../src/media/media.h"
#include "../../src/net/net.h"
#include "mp4probe.h"
#include "unit.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-engine-XXXXXX";
static struct engine *sandbox;

static void job_t2v(struct job *job, int resolution, const char *ratio,
                    int duration, int64_t seed, const char *prompt)
{
    memset(job, 0, sizeof(*job));
    snprintf(job->model, sizeof(job->model), "happyhorse-1.0-t2v");
    job->kind = TASK_T2V;
    job->prompt = (char *)prompt;
    job->resolution = resolution;
    snprintf(job->ratio, sizeof(job->ratio), "%s", ratio);
    job->duration = duration;
    job->watermark = true;
    job->seed = seed;
}

static const char *path_of(const char *name)
{
    static char path[4][64];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    return p;
}

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

static int render(const struct job *job, const char *path,
                  struct job_result *res, struct errmsg *err)
{
    atomic_bool stop = false;
    struct job_ctl ctl = { .stop = &stop };
    return engine_run(sandbox, job, NULL, path, &ctl, res, err);
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
static void job_kind(struct job *job, struct job_inputs *in,
                     enum task_kind kind, const char *model, int duration,
                     int64_t seed, const char *prompt)
{
    job_t2v(job, 480, kind == TASK_R2V ? "16:9" : "", duration, seed, prompt);
    job->kind = kind;
    snprintf(job->model, sizeof(job->model), "%s", model);
    memset(in, 0, sizeof(*in));
}

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

/* ---------------------------------------------------- upstream engine */

/*
 * The upstream engine against a fake upstream in this process (libmicro-
 * httpd on 127.0.0.1): scripted answers for submits and polls, the
 * requests it saw recorded, and a real MP4 (a sandbox render) behind its
 * video link.
 */
#define FAKE_KEY    "fake-upstream-key-0123"
#define FAKE_SCRIPT 16
#define FAKE_SUBMIT "/api/v1/services/aigc/video-generation/video-synthesis"

struct fake_answer {
    int status;
    const char *body;
    const char *retry_after;
};

static struct fake {
    pthread_mutex_t lock; /* the handler runs on MHD's threads */
    struct fake_answer submit[FAKE_SCRIPT], poll[FAKE_SCRIPT];
    int n_submit, n_poll;
    int submits, polls, videos, checks, refused; /* requests seen */
    bool tt_path;    /* the last submit went to /happyhorse/... */
    char body[8192]; /* the last submit's body */
    char auth[128], tt_key[128], async[32], idem[128];
    char poll_path[256];
    int video_status; /* 0: 200 with the video */
    unsigned char *video;
    size_t video_len;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct MHD_Daemon *fake_daemon;
static char fake_base[64];   /* "http://127.0.0.1:PORT" */
static char fake_done[1024]; /* the SUCCEEDED answer */
static const char fake_running[] =
    "{\"output\":{\"task_id\":\"up-1\",\"task_status\":\"RUNNING\","
    "\"progress\":40}}";

static void fake_reset(void)
{
    pthread_mutex_lock(&fake.lock);
    fake.n_submit = fake.n_poll = 0;
    fake.submits = fake.polls = fake.videos = fake.checks = fake.refused = 0;
    fake.tt_path = false;
    fake.body[0] = fake.auth[0] = fake.tt_key[0] = fake.async[0] = '\0';
    fake.idem[0] = fake.poll_path[0] = '\0';
    fake.video_status = 0;
    pthread_mutex_unlock(&fake.lock);
}

static void copy_header(struct MHD_Connection *c, const char *name, char *out,
                        size_t size)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, size, "%s", v ? v : "");
}

static enum MHD_Result fake_reply(struct MHD_Connection *c, int status,
                                  const char *body, const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fake_request(void *cls, struct MHD_Connection *c,
                                    const char *url, const char *method,
                                    const char *version, const char *upload,
                                    size_t *upload_size, void **req_cls)
{
    (void)cls, (void)version;
    struct buf *b = *req_cls;
    if (!b) { /* the headers: the body, if any, comes next */
        *req_cls = xcalloc(1, sizeof(struct buf));
        return MHD_YES;
    }
    if (*upload_size) {
        buf_append(b, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    char auth[128], tt_key[128];
    copy_header(c, "Authorization", auth, sizeof(auth));
    copy_header(c, "TT-API-KEY", tt_key, sizeof(tt_key));
    bool tt = strncmp(url, "/happyhorse/", 12) == 0;
    const char *path = tt ? url + 11 : url;
    struct fake_answer a = { 200, "{}", NULL };
    char body[1024];

    pthread_mutex_lock(&fake.lock);
    if (strcmp(path, "/video.mp4") == 0) {
        fake.videos++;
        int st = fake.video_status ? fake.video_status : 200;
        pthread_mutex_unlock(&fake.lock);
        struct MHD_Response *r =
            st == 200 ? MHD_create_response_from_buffer(
                            fake.video_len, fake.video, MHD_RESPMEM_PERSISTENT)
                      : MHD_create_response_from_buffer(0, (void *)"",
                                                        MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)st, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(auth, "Bearer " FAKE_KEY) != 0 &&
        strcmp(tt_key, FAKE_KEY) != 0) {
        fake.refused++;
        a = (struct fake_answer){ 401,
                                  "{\"code\":\"InvalidApiKey\",\"message\":"
                                  "\"Invalid API-key provided.\"}",
                                  NULL };
    } else if (strcmp(method, "POST") == 0 && strcmp(path, FAKE_SUBMIT) == 0) {
        fake.submits++;
        fake.tt_path = tt;
        snprintf(fake.body, sizeof(fake.body), "%s", b->data ? b->data : "");
        snprintf(fake.auth, sizeof(fake.auth), "%s", auth);
        snprintf(fake.tt_key, sizeof(fake.tt_key), "%s", tt_key);
        copy_header(c, "X-DashScope-Async", fake.async, sizeof(fake.async));
        copy_header(c, "Idempotency-Key", fake.idem, sizeof(fake.idem));
        if (fake.submits <= fake.n_submit)
            a = fake.submit[fake.submits - 1];
        else
            a.body = "{\"request_id\":\"r\",\"output\":{\"task_id\":\"up-1\","
                     "\"task_status\":\"PENDING\"}}";
    } else if (strcmp(method, "GET") == 0 &&
               strcmp(path, "/api/v1/tasks/"
                            "00000000-0000-0000-0000-000000000000") == 0) {
        fake.checks++;
        a.body = "{\"output\":{\"task_id\":\"00000000-0000-0000-0000-"
                 "000000000000\",\"task_status\":\"UNKNOWN\"}}";
    } else if (strcmp(method, "GET") == 0 &&
               strncmp(path, "/api/v1/tasks/", 14) == 0) {
        fake.polls++;
        snprintf(fake.poll_path, sizeof(fake.poll_path), "%s", url);
        if (fake.polls <= fake.n_poll)
            a = fake.poll[fake.polls - 1];
        else
            a.body = fake_done;
    } else {
        a = (struct fake_answer){ 404, "{\"code\":\"NotFound\"}", NULL };
    }
    snprintf(body, sizeof(body), "%s", a.body);
    pthread_mutex_unlock(&fake.lock);
    return fake_reply(c, a.status, body, a.retry_after);
}

static void fake_done_req(void *cls, struct MHD_Connection *c, void **req_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct buf *b = *req_cls;
    if (b) {
        buf_fini(b);
        free(b);
    }
    *req_cls = NULL;
}

static bool fake_start(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fake_daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_AUTO,
        0, NULL, NULL, fake_request, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sin, MHD_OPTION_NOTIFY_COMPLETED, fake_done_req,
        NULL, MHD_OPTION_END);
    if (!fake_daemon)
        return false;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(fake_daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(fake_base, sizeof(fake_base), "http://127.0.0.1:%u",
             info ? info->port : 0);
    snprintf(fake_done, sizeof(fake_done),
             "{\"request_id\":\"r\",\"output\":{\"task_id\":\"up-1\","
             "\"task_status\":\"SUCCEEDED\",\"video_url\":\"%s/video.mp4?"
             "Signature=SECRET\"},\"usage\":{\"duration\":7,"
             "\"input_video_duration\":0,\"output_video_duration\":7,"
             "\"video_count\":1,\"SR\":720,\"ratio\":\"1:1\"}}",
             fake_base);
    /* The upstream's video: a real render. */
    struct job job;
    struct job_result res;
    struct errmsg err = { 0 };
    job_t2v(&job, 480, "16:9", 3, 5, "the upstream's render");
    if (render(&job, path_of("upstream.mp4"), &res, &err) < 0)
        return false;
    FILE *f = fopen(path_of("upstream.mp4"), "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    fake.video_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    fake.video = xmalloc(fake.video_len);
    bool ok = fread(fake.video, 1, fake.video_len, f) == fake.video_len;
    fclose(f);
    return ok;
}

static void fake_stop(void)
{
    if (fake_daemon)
        MHD_stop_daemon(fake_daemon);
    free(fake.video);
}

/* An upstream engine on the fake with quick polls and `more` options. */
static struct engine *relay(const char *dialect, const char *base,
                            const char *more)
{
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    char spec[512];
    snprintf(spec, sizeof(spec),
             "upstream:%s %s poll=10ms poll-max=30ms rate=1000 %s", dialect,
             base, more);
    if (engine_new(spec, &e, &err) < 0)
        fprintf(stderr, "  relay: %s\n", errmsg_text(&err));
    CHECK(e != NULL);
    return e;
}

/* What a run told its caller through ctl. */
struct relay_log {
    atomic_bool stop;
    int progress_calls, last_pct, stop_at_pct;
    int saves, save_rc;
    char saved[TASK_REF_MAX];
};

static void relay_progress(void *arg, int pct)
{
    struct relay_log *l = arg;
    l->progress_calls++;
    l->last_pct = pct;
    if (l->stop_at_pct && pct >= l->stop_at_pct)
        atomic_store(&l->stop, true);
}

static int relay_save(void *arg, const char *ref)
{
    struct relay_log *l = arg;
    l->saves++;
    snprintf(l->saved, sizeof(l->saved), "%s", ref);
    return l->save_rc;
}

static int relay_run(struct engine *e, const struct job *job, const char *ref,
                     struct relay_log *l, struct job_result *res,
                     struct errmsg *err)
{
    struct job_ctl ctl = { .task_id = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000",
                           .stop = &l->stop,
                           .progress = relay_progress,
                           .ref = ref,
                           .save_ref = relay_save,
                           .arg = l };
    unlink(path_of("relayed.mp4"));
    return engine_run(e, job, NULL, path_of("relayed.mp4"), &ctl, res, err);
}

static void fake_script(struct fake_answer *to, int *n,
                        const struct fake_answer *from, int count)
{
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < count; i++)
        to[i] = from[i];
    *n = count;
    pthread_mutex_unlock(&fake.lock);
}

static bool same_bytes_as_upstream(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char *got = xmalloc(fake.video_len + 1);
    size_t n = fread(got, 1, fake.video_len + 1, f);
    fclose(f);
    bool same = n == fake.video_len && memcmp(got, fake.video, n) == 0;
    free(got);
    return same;
}

static void upstream_spec_words(void)
{
    static const struct {
        const char *spec, *says;
    } bad[] = {
        { "upstream:", "DIALECT BASE_URL" },
        { "upstream:dashscope", "DIALECT BASE_URL" },
        { "upstream:openai http://h key=k", "dashscope or ttapi" },
        { "upstream:dashscope ftp://h key=k", "http(s)://host" },
        { "upstream:dashscope http:// key=k", "http(s)://host" },
        { "upstream:dashscope http://h/?a=b key=k", "http(s)://host" },
        { "upstream:dashscope http://h", "key=KEY or key-env=VAR" },
        { "upstream:dashscope http://h key=", "key:" },
        { "upstream:dashscope http://h key=a key-env=HOME", "once" },
        { "upstream:dashscope http://h key-env=PADDOCK_TEST_UNSET_VAR",
          "PADDOCK_TEST_UNSET_VAR" },
        { "upstream:dashscope http://h key=k rate=0", "rate=N" },
        { "upstream:dashscope http://h key=k rate=fast", "rate=N" },
        { "upstream:dashscope http://h key=k poll=soon", "poll=DURATION" },
        { "upstream:dashscope http://h key=k poll=1ms", "poll=DURATION" },
        { "upstream:dashscope http://h key=k poll=61m", "poll=DURATION" },
        { "upstream:dashscope http://h key=k poll=2s poll-max=1s",
          "poll-max=DURATION" },
        { "upstream:dashscope http://h key=k timeout=5h", "timeout=DURATION" },
        { "upstream:dashscope http://h key=k kye=SECRET-VALUE", "'kye'" },
        { "upstream:dashscope http://h key=k SECRET-VALUE", "OPTION=VALUE" },
    };
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    unsetenv("PADDOCK_TEST_UNSET_VAR");
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        e = (struct engine *)1;
        CHECK_INT(engine_new(bad[i].spec, &e, &err), ERR_INVALID_PARAMETER);
        CHECK(e == NULL);
        if (!strstr(err.text, bad[i].says) || strstr(err.text, "SECRET")) {
            fprintf(stderr, "  '%s': %s\n", bad[i].spec, err.text);
            CHECK(false);
        }
    }
    CHECK_INT(engine_new("upstream:dashscope http://127.0.0.1:9/ key=k "
                         "rate=0.5 poll=500ms poll-max=1m timeout=2s",
                         &e, &err),
              0);
    if (e) {
        CHECK_STR(engine_name(e), "upstream");
        CHECK(!engine_local_media(e));
    }
    engine_free(e);
    /* The help says "from 10ms to 1h": both ends are taken, in any form of
     * the one duration syntax (1h was refused before it was shared). */
    static const char *const polls[] = { "poll=1h", "poll=10ms poll-max=1h",
                                         "poll=60m", "poll=1m30s",
                                         "poll=3600" };
    for (size_t i = 0; i < ARRAY_LEN(polls); i++) {
        char spec[128];
        snprintf(spec, sizeof(spec), "upstream:dashscope http://h key=k %s",
                 polls[i]);
        e = NULL;
        CHECK_INT(engine_new(spec, &e, &err), 0);
        if (!e)
            fprintf(stderr, "  '%s': %s\n", spec, err.text);
        engine_free(e);
    }
    setenv("PADDOCK_TEST_KEY_VAR", "from-the-environment", 1);
    CHECK_INT(engine_new("upstream:ttapi  https://api.example.com\t"
                         "key-env=PADDOCK_TEST_KEY_VAR",
                         &e, &err),
              0);
    engine_free(e);
    /* The registry names the upstream engine among the known ones. */
    CHECK_INT(engine_new("dreamworks", &e, &err), ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "upstream:") != NULL);
    /* A mistyped prefix: the message repeats the first word only, never
     * the key that follows it. */
    CHECK_INT(
        engine_new("upstreams:dashscope https://h key=sk-secret-42", &e, &err),
        ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "'upstreams:dashscope'") != NULL);
    CHECK(strstr(err.text, "sk-secret-42") == NULL);
}

static void upstream_relays_a_job(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    fake_reset();
    const struct fake_answer polls[] = {
        { 200,
          "{\"output\":{\"task_id\":\"up-1\",\"task_status\":"
          "\"PENDING\"}}",
          NULL },
        { 200, fake_running, NULL },
        { 503, "{\"code\":\"ServiceUnavailable\"}", NULL },
        { 200,
          "{\"output\":{\"task_id\":\"up-1\",\"task_status\":"
          "\"RUNNING\",\"progress\":100}}",
          NULL },
    };
    fake_script(fake.poll, &fake.n_poll, polls, ARRAY_LEN(polls));
    job_kind(&job, &(struct job_inputs){ 0 }, TASK_I2V, "happyhorse-1.1-i2v", 5,
             77, "a horse");
    job.media[0].type = JOB_MEDIA_FIRST_FRAME;
    job.media[0].url = "data:image/png;base64,iVBORw0KGgo=";
    job.n_media = 1;
    job.watermark = false;
    job.extra = "{\"input\":{\"negative_prompt\":\"rain\",\"prompt\":\"NO\"},"
                "\"parameters\":{\"prompt_extend\":true,\"seed\":1}}";
    int rc = relay_run(e, &job, NULL, &l, &res, &err);
    if (rc < 0)
        fprintf(stderr, "  relay: %s\n", errmsg_text(&err));
    CHECK_INT(rc, 0);
    CHECK_INT(fake.submits, 1);
    CHECK_INT(fake.polls, 5);
    CHECK(!fake.tt_path);
    CHECK_STR(fake.auth, "Bearer " FAKE_KEY);
    CHECK_STR(fake.async, "enable");
    CHECK_STR(fake.idem, "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000");
    CHECK_STR(fake.poll_path, "/api/v1/tasks/up-1");
    CHECK_INT(l.saves, 1);
    CHECK_STR(l.saved, "up-1");
    CHECK(l.progress_calls >= 2 && l.last_pct == 100);
    CHECK(same_bytes_as_upstream(path_of("relayed.mp4")));
    /* The upstream's usage is what is billed. */
    CHECK(res.usage.output_s == 7 && res.usage.input_s == 0);
    CHECK_INT(res.usage.sr, 720);
    CHECK_STR(res.usage.ratio, "1:1");
    CHECK_STR(res.code, "");

    json_t *body = json_loads(fake.body, 0, NULL);
    json_t *in = json_object_get(body, "input");
    json_t *par = json_object_get(body, "parameters");
    json_t *m0 = json_array_get(json_object_get(in, "media"), 0);
    CHECK_STR(json_string_value(json_object_get(body, "model")),
              "happyhorse-1.1-i2v");
    CHECK_STR(json_string_value(json_object_get(in, "prompt")), "a horse");
    CHECK_STR(json_string_value(json_object_get(in, "negative_prompt")),
              "rain");
    CHECK_STR(json_string_value(json_object_get(m0, "type")), "first_frame");
    CHECK_STR(json_string_value(json_object_get(m0, "url")),
              "data:image/png;base64,iVBORw0KGgo=");
    CHECK_STR(json_string_value(json_object_get(par, "resolution")), "480P");
    CHECK(json_object_get(par, "ratio") == NULL); /* i2v: follows the image */
    CHECK_INT(json_integer_value(json_object_get(par, "duration")), 5);
    CHECK(json_is_false(json_object_get(par, "watermark")));
    CHECK_INT(json_integer_value(json_object_get(par, "seed")), 77);
    CHECK(json_is_true(json_object_get(par, "prompt_extend")));
    CHECK(json_object_get(par, "audio_setting") == NULL);
    json_decref(body);
    engine_free(e);
}

static void upstream_ttapi_dialect(void)
{
    struct engine *e = relay("ttapi", fake_base, "key=" FAKE_KEY " timeout=5s");
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    fake_reset();
    job_kind(&job, &(struct job_inputs){ 0 }, TASK_EDIT,
             "happyhorse-1.0-video-edit", 0, 3, "make it night");
    job.media[0].type = JOB_MEDIA_VIDEO;
    job.media[0].url = "https://example.com/in.mp4";
    job.n_media = 1;
    job.audio_origin = true;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), 0);
    CHECK(fake.tt_path);
    CHECK_STR(fake.tt_key, FAKE_KEY);
    CHECK_STR(fake.auth, "");
    CHECK_STR(fake.async, "");
    CHECK_STR(fake.poll_path, "/happyhorse/api/v1/tasks/up-1");
    json_t *body = json_loads(fake.body, 0, NULL);
    json_t *par = json_object_get(body, "parameters");
    CHECK_STR(json_string_value(json_object_get(par, "audio_setting")),
              "origin");
    CHECK(json_object_get(par, "duration") == NULL);
    json_decref(body);
    engine_free(e);
    /* A base that already ends in /happyhorse is not doubled. */
    char base_tt[96];
    snprintf(base_tt, sizeof(base_tt), "%s/happyhorse/", fake_base);
    e = relay("ttapi", base_tt, "key=" FAKE_KEY);
    fake_reset();
    if (e)
        CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), 0);
    CHECK_STR(fake.poll_path, "/happyhorse/api/v1/tasks/up-1");
    engine_free(e);
}

static void upstream_resumes_a_saved_task(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    fake_reset();
    job_t2v(&job, 480, "16:9", 3, 1, "resumed");
    CHECK_INT(relay_run(e, &job, "up-77", &l, &res, &err), 0);
    CHECK_INT(fake.submits, 0);
    CHECK_INT(l.saves, 0);
    CHECK_STR(fake.poll_path, "/api/v1/tasks/up-77");
    CHECK(same_bytes_as_upstream(path_of("relayed.mp4")));
    /* A saved id that cannot go into a URL is not followed. */
    fake_reset();
    CHECK_INT(relay_run(e, &job, "../../etc", &l, &res, &err), ERR_ALGO);
    CHECK_INT(fake.polls, 0);
    engine_free(e);
}

static void upstream_submit_retries(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    job_t2v(&job, 480, "16:9", 3, 1, "busy upstream");
    /* 429 (with and without Retry-After) and 5xx, then the answer. */
    fake_reset();
    const struct fake_answer busy[] = {
        { 429, "{\"code\":\"Throttling.AllocationQuota\"}", "0" },
        { 429, "{\"code\":\"Throttling\"}", NULL },
        { 500, "{\"code\":\"InternalError\",\"message\":\"oops\"}", NULL },
        { 502, "<html>bad gateway</html>", NULL },
    };
    fake_script(fake.submit, &fake.n_submit, busy, ARRAY_LEN(busy));
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), 0);
    CHECK_INT(fake.submits, 5);
    CHECK_INT(l.saves, 1);
    CHECK(same_bytes_as_upstream(path_of("relayed.mp4")));

    /* 5xx every time: five retries, then the run fails. */
    fake_reset();
    struct fake_answer down[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        down[i] = (struct fake_answer){ 503,
                                        "{\"code\":\"ServiceUnavailable\","
                                        "\"message\":\"maintenance\"}",
                                        NULL };
    fake_script(fake.submit, &fake.n_submit, down, FAKE_SCRIPT);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK_INT(fake.submits, 6);
    CHECK(strstr(err.text, "answered HTTP 503 ServiceUnavailable") &&
          strstr(err.text, "maintenance"));
    CHECK_STR(res.code, "");
    engine_free(e);
}

static void upstream_refusals(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct engine *wrong = relay("dashscope", fake_base, "key=WRONG-KEY-42");
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e || !wrong)
        goto out;
    job_t2v(&job, 480, "16:9", 3, 1, "refused");

    /* Our key: refused at once, the key nowhere in the message. */
    fake_reset();
    CHECK_INT(relay_run(wrong, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK_INT(fake.refused, 1);
    CHECK(strstr(err.text, "refused paddock's key") &&
          strstr(err.text, "HTTP 401 InvalidApiKey") &&
          !strstr(err.text, fake_base) && !strstr(err.text, "WRONG-KEY"));
    CHECK_STR(res.code, "");

    /* The request itself: the upstream's code and message, as they are. */
    fake_reset();
    const struct fake_answer invalid[] = {
        { 400,
          "{\"code\":\"InvalidParameter\",\"message\":\"parameters."
          "duration must be an integer from 3 to 15\"}",
          NULL },
    };
    fake_script(fake.submit, &fake.n_submit, invalid, 1);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_INVALID_PARAMETER);
    CHECK_STR(res.code, "InvalidParameter");
    CHECK_STR(err.text, "parameters.duration must be an integer from 3 to 15");
    CHECK_INT(l.saves, 0);

    /* FAILED upstream, with a code paddock has never heard of. */
    fake_reset();
    const struct fake_answer failed[] = {
        { 200,
          "{\"output\":{\"task_id\":\"up-1\",\"task_status\":"
          "\"FAILED\",\"code\":\"Vendor.GpuMelted\",\"message\":"
          "\"the GPU melted\"}}",
          NULL },
    };
    fake_script(fake.poll, &fake.n_poll, failed, 1);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK_STR(res.code, "Vendor.GpuMelted");
    CHECK_STR(err.text, "the GPU melted");
    CHECK(access(path_of("relayed.mp4"), F_OK) != 0);

    /* CANCELED and UNKNOWN upstream. */
    static const struct {
        const char *status, *says;
    } ends[] = { { "CANCELED", "the upstream canceled task up-1" },
                 { "UNKNOWN", "the upstream no longer knows task up-1" } };
    for (size_t i = 0; i < ARRAY_LEN(ends); i++) {
        char b[160];
        snprintf(b, sizeof(b),
                 "{\"output\":{\"task_id\":\"up-1\",\"task_status\":\"%s\"}}",
                 ends[i].status);
        fake_reset();
        const struct fake_answer one[] = { { 200, b, NULL } };
        fake_script(fake.poll, &fake.n_poll, one, 1);
        CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
        CHECK_STR(err.text, ends[i].says);
        CHECK_STR(res.code, "");
    }

    /* The video link fails: nothing of it shows in the message. */
    fake_reset();
    pthread_mutex_lock(&fake.lock);
    fake.video_status = 404;
    pthread_mutex_unlock(&fake.lock);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK(strstr(err.text, "HTTP 404") && !strstr(err.text, "video.mp4") &&
          !strstr(err.text, "127.0.0.1") && !strstr(err.text, "SECRET"));
out:
    engine_free(e);
    engine_free(wrong);
}

static void upstream_unreachable(void)
{
    /* A port nothing listens on: bound, never listened to. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    char closed[64];
    snprintf(closed, sizeof(closed), "http://127.0.0.1:%u",
             ntohs(sin.sin_port));
    struct engine *e = relay("dashscope", closed, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    job_t2v(&job, 480, "16:9", 3, 1, "nobody home");
    if (e) {
        CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
        /* Clients read this: the upstream's address is not in it. */
        CHECK(strstr(err.text, "unreachable") && !strstr(err.text, closed) &&
              !strstr(err.text, "127.0.0.1"));
        CHECK_INT(engine_check(e, NULL, &err), ERR_MODEL_UNAVAILABLE);
        CHECK(strstr(err.text, "unreachable") != NULL);
    }
    engine_free(e);
    close(fd);
}

static void upstream_check_and_stop(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct engine *wrong = relay("ttapi", fake_base, "key=WRONG-KEY-42");
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e || !wrong)
        goto out;
    fake_reset();
    CHECK_INT(engine_check(e, NULL, &err), 0);
    CHECK_INT(fake.checks, 1);
    CHECK_INT(engine_check(wrong, NULL, &err), ERR_MODEL_UNAVAILABLE);
    CHECK(strstr(err.text, "refused the key") && !strstr(err.text, "WRONG"));

    /* The stop flag, set while the upstream task runs. */
    job_t2v(&job, 480, "16:9", 3, 1, "stopped");
    fake_reset();
    struct fake_answer running[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        running[i] = (struct fake_answer){ 200, fake_running, NULL };
    fake_script(fake.poll, &fake.n_poll, running, FAKE_SCRIPT);
    l.stop_at_pct = 40;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_STOPPED);
    CHECK_INT(fake.polls, 1);
    CHECK_INT(l.saves, 1);

    /* Another worker took the task: give up, submit nothing more. */
    fake_reset();
    memset(&l, 0, sizeof(l));
    l.save_rc = ERR_CONFLICT;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_STOPPED);
    CHECK_INT(fake.polls, 0);
    l.save_rc = ERR_STORE;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_INTERNAL);
out:
    engine_free(e);
    engine_free(wrong);
}

int main(void)
{
    unit_suite = "engine";
    struct errmsg err = { 0 };
    if (!mkdtemp(dir) || engine_new("sandbox", &sandbox, &err) < 0) {
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
    if (net_global_init(&err) == 0 && fake_start()) {
        RUN(upstream_spec_words);
        RUN(upstream_relays_a_job);
        RUN(upstream_ttapi_dialect);
        RUN(upstream_resumes_a_saved_task);
        RUN(upstream_submit_retries);
        RUN(upstream_refusals);
        RUN(upstream_unreachable);
        RUN(upstream_check_and_stop);
    } else {
        printf("FAIL engine.upstream_fixture\n");
        unit_failed++;
    }
    fake_stop();
    net_global_fini();
    engine_free(sandbox);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return UNIT_END();
}
