/*
 * Unit tests of src/engine: the registry and the sandbox engine. Renders
 * go to a temporary directory and are checked from outside, with ffprobe
 * (codec, API.md section 4 sizes, 24 fps, exact duration, faststart) and
 * the ffmpeg CLI (the watermark, decoded).
 */
#include "../../src/engine/engine.h"
#include "../../src/media/media.h"
#include "mp4probe.h"
#include "unit.h"

#include <stdlib.h>
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

/* API.md section 4, written out here rather than read from task/. */
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
    struct job_ctl ctl = { &stop, on_progress, &log };
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
    ctl.progress_arg = &log;
    t0 = clock_mono_ms();
    CHECK_INT(engine_run(sandbox, &job, NULL, path, &ctl, &res, &err),
              ERR_STOPPED);
    CHECK(log.last >= 10 && log.last <= 11);
    CHECK(strstr(err.text, "stopped") != NULL);
    CHECK(clock_mono_ms() - t0 < 10000);
    unlink(path); /* the engine leaves the partial file to the caller */
}

static void other_kinds_refused(void)
{
    static const enum task_kind kinds[] = { TASK_I2V, TASK_R2V, TASK_EDIT };
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        struct job job;
        struct job_result res;
        struct errmsg err = { 0 };
        job_t2v(&job, 720, "", 5, 1, "x");
        job.kind = kinds[i];
        const char *path = path_of("k.mp4");
        CHECK_INT(render(&job, path, &res, &err), ERR_ALGO);
        CHECK(strstr(err.text, task_kind_name(kinds[i])) != NULL);
        CHECK(access(path, F_OK) != 0);
    }
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
    RUN(other_kinds_refused);
    RUN(bad_inputs);
    engine_free(sandbox);
    rmdir(dir);
    return UNIT_END();
}
