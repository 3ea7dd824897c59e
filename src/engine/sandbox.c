/*
 * The sandbox engine: a real MP4 (H.264 and AAC) of the requested size and
 * length for every task kind, a pure function of the prompt, seed,
 * parameters and input files, so tests and demos get the same bytes for
 * the same request and no model is needed:
 *
 * - t2v: colour bands panning across the frame, a few shapes bouncing over
 *   them;
 * - i2v: the first frame is the image (fitted to the ratio nearest its
 *   own, centre-cropped); then a slow zoom towards a seeded point;
 * - r2v: each reference image in turn, in order, panned, cross-fading into
 *   the next;
 * - video-edit: the input's frames (resampled to 24 fps by timestamp, cut
 *   at 15 s) graded and tinted, a translucent band sweeping across, the
 *   reference images as tiles; the input's audio when asked for.
 * The soundtrack is otherwise a soft seeded chord. engine_run has held
 * every input to the limits of docs/api.md s.3.6 (task_media_check) before
 * this runs, so a video lasts 3 s or more and every picture has a size.
 *
 * The engine around this render (its options, its scenario) is steer.c.
 *
 * Speed matters more than beauty: every picture is drawn with integer math
 * straight into the encoder's planes, each input is decoded and scaled
 * once (a video: once per frame), and what changes per frame is a copy, a
 * blend or one bilinear pass (media_view), so rendering stays a fraction
 * of encoding. t2v's bands are the sum of a per-row value and a per-column
 * table read at a per-row offset: a row costs one table walk, 8 pixels per
 * 64-bit add; a 720p frame takes about 0.3 ms.
 */
#include "sandbox_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARK_TEXT "AI GENERATED"

/* --------------------------------------------------------------- renders */

/* Samples one frame lasts. */
#define FRAME_SAMPLES (MEDIA_AUDIO_RATE / MEDIA_FPS)
/* An input video is used up to this long (docs/api.md s.4). */
#define EDIT_MAX_S 15
/* Reference tiles over an edited video: at most this many. */
#define EDIT_TILES_MAX 5

static bool stopped(const struct job_ctl *ctl)
{
    return ctl && ctl->stop && atomic_load(ctl->stop);
}

/* Everything one run needs; each kind uses its part. */
struct render {
    const struct job *job;
    const struct job_inputs *in;
    const struct job_ctl *ctl;
    uint64_t hash; /* job_hash: every seeded choice starts here */
    int width, height;
    int64_t frames;
    struct job_result res;

    struct scene scene; /* t2v */

    /* i2v: pic[0], the first frame. r2v: one canvas per reference, a bit
     * larger than the frame, panned. edit: the reference tiles. */
    struct media_picture pic[LIMIT_MEDIA_ITEMS];
    int n_pics;
    int pan[LIMIT_MEDIA_ITEMS][4];  /* r2v: start x, y, end x, y (even) */
    int zoom_q16, focus_x, focus_y; /* i2v: final zoom and centre */

    struct media_video *video; /* edit */
    struct media_grade grade[3];
    int band_w, band_speed; /* 1/256 px per frame, signed */
    struct media_yuv band_color;
    int tile, tile_gap;

    bool origin_audio; /* edit: the input's audio, not the synth */
    struct synth synth;
};

static void render_fini(struct render *r)
{
    sandbox__scene_fini(&r->scene);
    for (int i = 0; i < r->n_pics; i++)
        media_picture_fini(&r->pic[i]);
    media_video_free(r->video);
}

/* The local file of media[i]. */
static int input_src(const struct render *r, size_t i, struct media_src *src,
                     struct errmsg *err)
{
    if (!r->in || i >= r->in->n || !r->in->path[i])
        return errmsg_set(err, ERR_ALGO,
                          "media[%zu] was not fetched for the sandbox", i);
    memset(src, 0, sizeof(*src));
    src->path = r->in->path[i];
    return 0;
}

/* Open media[i] as an image and fit it to w x h. */
static int load_image(struct render *r, size_t i, struct media_image **keep,
                      int w, int h, struct media_picture *out,
                      struct errmsg *err)
{
    struct media_src src;
    struct media_image *img = NULL;
    char name[32];
    snprintf(name, sizeof(name), "media[%zu]", i);
    /* Nine large images take a while: stop between them. */
    if (stopped(r->ctl))
        return errmsg_set(err, ERR_STOPPED, "stopped reading the inputs");
    int rc = input_src(r, i, &src, err);
    if (rc == 0)
        rc = media_image_open(&src, name, &img, err);
    if (rc == 0 && keep) { /* the caller picks the size first */
        *keep = img;
        return 0;
    }
    if (rc == 0)
        rc = media_image_fit(img, w, h, out, err);
    media_image_free(img);
    return rc;
}

static int check_duration(const struct job *job, struct errmsg *err)
{
    if (job->duration < LIMIT_DURATION_MIN ||
        job->duration > LIMIT_DURATION_MAX)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "duration %d s: must be %d..%d", job->duration,
                          LIMIT_DURATION_MIN, LIMIT_DURATION_MAX);
    return 0;
}

static int size_for(struct render *r, const char *ratio, struct errmsg *err)
{
    if (task_size(r->job->resolution, ratio, &r->width, &r->height) < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "no output size for resolution %d and ratio '%s'",
                          r->job->resolution, ratio);
    return 0;
}

/* Usage of a generated clip (t2v, i2v, r2v): whole seconds. */
static void usage_generated(struct render *r, const char *ratio)
{
    r->res.usage.output_s = r->job->duration;
    r->res.usage.input_s = 0;
    r->res.usage.sr = r->job->resolution;
    snprintf(r->res.usage.ratio, sizeof(r->res.usage.ratio), "%s", ratio);
}

/* smoothstep of i / n in 1/65536. */
static int64_t ease(int64_t i, int64_t n)
{
    if (n <= 0)
        return 65536;
    int64_t t = i * 65536 / n;
    return (t * t >> 16) * (3 * 65536 - 2 * t) >> 16;
}

/* ---- t2v: the scene above */

static int t2v_setup(struct render *r, struct errmsg *err)
{
    int rc = size_for(r, r->job->ratio, err);
    if (rc == 0)
        rc = check_duration(r->job, err);
    if (rc < 0)
        return rc;
    r->frames = (int64_t)r->job->duration * MEDIA_FPS;
    sandbox__scene_init(&r->scene, r->job, r->width, r->height);
    usage_generated(r, r->job->ratio);
    return 0;
}

static int t2v_draw(struct render *r, const struct media_frame *f, int64_t t,
                    struct errmsg *err)
{
    (void)err;
    sandbox__scene_draw(&r->scene, f, t);
    return 0;
}

/* ---- i2v: the first frame, then a slow zoom towards a seeded point */

static int i2v_setup(struct render *r, struct errmsg *err)
{
    struct media_image *img = NULL;
    size_t i = 0;
    while (i < r->job->n_media &&
           r->job->media[i].type != JOB_MEDIA_FIRST_FRAME)
        i++;
    if (i == r->job->n_media)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "input.media needs a first_frame image");
    int rc = check_duration(r->job, err);
    if (rc == 0)
        rc = load_image(r, i, &img, 0, 0, NULL, err);
    if (rc < 0)
        return rc;
    const struct task_media_info *info = media_image_info(img);
    rc = size_for(r, task_nearest_ratio(info->width, info->height), err);
    if (rc == 0)
        rc = media_image_fit(img, r->width, r->height, &r->pic[0], err);
    media_image_free(img);
    if (rc < 0)
        return rc;
    r->n_pics = 1;
    r->frames = (int64_t)r->job->duration * MEDIA_FPS;
    uint64_t st = r->hash;
    /* Zoom to 1.10..1.18 on a point in the middle half of the picture. */
    r->zoom_q16 = 65536 + sandbox__rnd(&st, 6554, 11796);
    r->focus_x = sandbox__rnd(&st, r->width / 4, r->width * 3 / 4);
    r->focus_y = sandbox__rnd(&st, r->height / 4, r->height * 3 / 4);
    /* usage.ratio is for t2v and r2v only (docs/api.md s.5). */
    usage_generated(r, "");
    return 0;
}

/* Top-left of a view of `step` (1/65536) over `side` px centred on c
 * (1/65536), kept inside the picture. */
static int64_t view_origin(int64_t c, int side, int64_t step)
{
    int64_t half = (int64_t)(side - 1) * step / 2;
    int64_t max = (int64_t)(side - 1) * 65536 - (int64_t)(side - 1) * step;
    int64_t o = c - half;
    return o < 0 ? 0 : o > max ? max : o;
}

static int i2v_draw(struct render *r, const struct media_frame *f, int64_t t,
                    struct errmsg *err)
{
    (void)err;
    int64_t e = ease(t, r->frames - 1);
    int64_t zoom = 65536 + ((r->zoom_q16 - 65536) * e >> 16);
    int64_t step = (INT64_C(65536) << 16) / zoom;
    /* The centre drifts from the middle to the focus as the zoom grows. */
    int64_t mx = (int64_t)(r->width - 1) * 32768;
    int64_t my = (int64_t)(r->height - 1) * 32768;
    int64_t cx =
        mx + sandbox__floor_div(((int64_t)r->focus_x * 65536 - mx) * e, 65536);
    int64_t cy =
        my + sandbox__floor_div(((int64_t)r->focus_y * 65536 - my) * e, 65536);
    media_view(f, &r->pic[0].f, view_origin(cx, r->width, step),
               view_origin(cy, r->height, step), step);
    return 0;
}

/* ---- r2v: each reference in turn, panned, cross-faded into the next */

/* Canvas = frame * (1 + 1/CANVAS_MARGIN): room for the pan. */
#define CANVAS_MARGIN 8
/* Longest cross-fade, frames. */
#define FADE_FRAMES 12

static int r2v_setup(struct render *r, struct errmsg *err)
{
    int rc = size_for(r, r->job->ratio, err);
    if (rc == 0)
        rc = check_duration(r->job, err);
    if (rc < 0)
        return rc;
    int cw = (r->width + r->width / CANVAS_MARGIN) & ~1;
    int ch = (r->height + r->height / CANVAS_MARGIN) & ~1;
    uint64_t st = r->hash;
    for (size_t i = 0; i < r->job->n_media; i++) {
        if (r->job->media[i].type != JOB_MEDIA_REFERENCE_IMAGE)
            continue;
        int k = r->n_pics;
        rc = load_image(r, i, NULL, cw, ch, &r->pic[k], err);
        if (rc < 0)
            return rc;
        r->n_pics++;
        /* From one corner region towards the opposite one. */
        int sx = sandbox__rnd(&st, 0, 1), sy = sandbox__rnd(&st, 0, 1);
        r->pan[k][0] = sx ? (cw - r->width) & ~1 : 0;
        r->pan[k][1] = sy ? (ch - r->height) & ~1 : 0;
        r->pan[k][2] = sx ? 0 : (cw - r->width) & ~1;
        r->pan[k][3] = sandbox__rnd(&st, 0, 1)
                           ? r->pan[k][1]
                           : (sy ? 0 : (ch - r->height) & ~1);
    }
    if (r->n_pics == 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "input.media needs at least one reference_image");
    r->frames = (int64_t)r->job->duration * MEDIA_FPS;
    usage_generated(r, r->job->ratio);
    return 0;
}

/* Reference k's view `u` frames into a slot of `len`. */
static struct media_frame r2v_view(const struct render *r, int k, int64_t u,
                                   int64_t len)
{
    const int *p = r->pan[k];
    int64_t d = len > 1 ? len - 1 : 1;
    u = u < 0 ? 0 : u > d ? d : u;
    int x = (int)(p[0] + (p[2] - p[0]) * u / d);
    int y = (int)(p[1] + (p[3] - p[1]) * u / d);
    return media_frame_window(&r->pic[k].f, x, y, r->width, r->height);
}

static int r2v_draw(struct render *r, const struct media_frame *f, int64_t t,
                    struct errmsg *err)
{
    (void)err;
    /* Slot k covers frames [F * k / n, F * (k + 1) / n). */
    int n = r->n_pics, k = (int)(t * n / r->frames);
    while (k + 1 < n && r->frames * (k + 1) / n <= t)
        k++;
    while (k > 0 && r->frames * k / n > t)
        k--;
    int64_t start = r->frames * k / n, end = r->frames * (k + 1) / n;
    int64_t len = end - start, u = t - start;
    struct media_frame a = r2v_view(r, k, u, len);
    int64_t fade = len / 3 < FADE_FRAMES ? len / 3 : FADE_FRAMES;
    if (k + 1 < n && fade > 0 && u >= len - fade) {
        int64_t next_len = r->frames * (k + 2) / n - end;
        struct media_frame b = r2v_view(r, k + 1, 0, next_len);
        int alpha = (int)((u - (len - fade) + 1) * 256 / (fade + 1));
        media_mix(f, &a, &b, alpha);
    } else {
        media_copy(f, &a);
    }
    return 0;
}

/* ---- edit: the input graded and tinted, a moving band, reference tiles */

static int edit_setup(struct render *r, struct errmsg *err)
{
    const struct job *job = r->job;
    size_t vi = 0;
    while (vi < job->n_media && job->media[vi].type != JOB_MEDIA_VIDEO)
        vi++;
    if (vi == job->n_media)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "input.media needs a video");
    struct media_src src;
    char name[32];
    snprintf(name, sizeof(name), "media[%zu]", vi);
    int rc = input_src(r, vi, &src, err);
    if (rc == 0)
        rc = media_video_open(&src, name, &r->video, err);
    if (rc < 0)
        return rc;
    const struct task_media_info *info = media_video_info(r->video);
    rc = size_for(r, task_nearest_ratio(info->width, info->height), err);
    if (rc < 0)
        return rc;
    /* The input's length cut at 15 s, in whole frames. */
    double len = info->duration_s < EDIT_MAX_S ? info->duration_s : EDIT_MAX_S;
    r->frames = (int64_t)(len * MEDIA_FPS + 1e-6);
    r->origin_audio = job->audio_origin && info->has_audio;

    uint64_t st = r->hash;
    /* Contrast and brightness; saturation and a tint (greys take it). */
    r->grade[0] =
        (struct media_grade){ sandbox__rnd(&st, 54, 74),
                              sandbox__rnd(&st, -14, 14), 126, 16, 235 };
    int sat = sandbox__rnd(&st, 38, 82);
    for (int p = 1; p <= 2; p++)
        r->grade[p] = (struct media_grade){ sat, sandbox__rnd(&st, -22, 22),
                                            128, 16, 240 };
    r->band_w = r->width / sandbox__rnd(&st, 6, 10);
    r->band_speed = ((r->width + r->band_w) * 256 / (int)r->frames) *
                    (sandbox__rnd(&st, 0, 1) ? 1 : -1);
    r->band_color = sandbox__bright(&st);

    /* Five tiles fit along the long side, a gap before each and two
     * after the last; a tile is at most a fifth of the short side. Even,
     * so tiles and their white frames cover whole chroma samples. */
    int shorter = r->width < r->height ? r->width : r->height;
    int longer = r->width < r->height ? r->height : r->width;
    r->tile_gap = (shorter / 40 + 4) & ~3;
    r->tile =
        (longer - (2 * EDIT_TILES_MAX + 1) * r->tile_gap) / EDIT_TILES_MAX;
    r->tile = (r->tile < shorter / 5 ? r->tile : shorter / 5) & ~1;
    for (size_t i = 0; i < job->n_media && r->n_pics < EDIT_TILES_MAX; i++) {
        if (job->media[i].type != JOB_MEDIA_REFERENCE_IMAGE)
            continue;
        rc = load_image(r, i, NULL, r->tile, r->tile, &r->pic[r->n_pics], err);
        if (rc < 0)
            return rc;
        r->n_pics++;
    }

    memset(&r->res.usage, 0, sizeof(r->res.usage));
    r->res.usage.input_s = (double)r->frames / MEDIA_FPS;
    r->res.usage.output_s = r->res.usage.input_s;
    r->res.usage.sr = job->resolution;
    return 0;
}

static int edit_draw(struct render *r, const struct media_frame *f, int64_t t,
                     struct errmsg *err)
{
    struct media_frame in;
    int rc = media_video_frame_at(r->video, t, MEDIA_FPS, r->width, r->height,
                                  &in, err);
    if (rc < 0)
        return rc;
    media_copy_grade(f, &in, r->grade);
    /* The band sweeps across once over the clip. */
    int64_t travel = (int64_t)r->band_speed * t / 256;
    int x = r->band_speed >= 0 ? (int)(travel - r->band_w)
                               : (int)(r->width + travel);
    media_blend_rect(f, x, 0, r->band_w, r->height, r->band_color, 72);
    /* Tiles in a row along the top (landscape) or a column down the left,
     * each on a white frame. */
    bool row = r->width >= r->height;
    int g = r->tile_gap, b = g / 2 & ~1;
    for (int i = 0; i < r->n_pics; i++) {
        int along = g + i * (r->tile + 2 * g);
        int tx = row ? along : g, ty = row ? g : along;
        media_fill_rect(f, tx - b, ty - b, r->tile + 2 * b, r->tile + 2 * b,
                        media_rgb(255, 255, 255));
        struct media_frame win =
            media_frame_window(f, tx, ty, r->tile, r->tile);
        media_copy(&win, &r->pic[i].f);
    }
    return 0;
}

/* ------------------------------------------------------------------- run */

/* How each task kind sets up (size, frames, inputs, usage) and draws. */
static const struct kind {
    int (*setup)(struct render *r, struct errmsg *err);
    int (*draw)(struct render *r, const struct media_frame *f, int64_t t,
                struct errmsg *err);
} kinds[] = {
    [TASK_T2V] = { t2v_setup, t2v_draw },
    [TASK_I2V] = { i2v_setup, i2v_draw },
    [TASK_R2V] = { r2v_setup, r2v_draw },
    [TASK_EDIT] = { edit_setup, edit_draw },
};

static void progress(const struct job_ctl *ctl, int percent, int *last)
{
    if (ctl && ctl->progress && percent != *last) {
        ctl->progress(ctl->arg, percent);
        *last = percent;
    }
}

/* One frame's audio: the input's (silence after its end) or the synth's. */
static int push_audio(struct render *r, struct media_writer *w,
                      struct errmsg *err)
{
    int16_t pcm[2 * FRAME_SAMPLES];
    if (r->origin_audio) {
        int got = 0;
        int rc = media_video_audio(r->video, pcm, FRAME_SAMPLES, &got, err);
        if (rc < 0)
            return rc;
        memset(pcm + 2 * got, 0, sizeof(int16_t) * 2 * (FRAME_SAMPLES - got));
    } else {
        sandbox__synth_render(&r->synth, pcm, FRAME_SAMPLES);
    }
    return media_writer_audio(w, pcm, FRAME_SAMPLES, err);
}

int engine_sandbox_render(const struct job *job, const struct job_inputs *in,
                          const char *out_path, const struct job_ctl *ctl,
                          struct job_result *res, struct errmsg *err)
{
    struct media_writer *w = NULL;
    struct render *r = NULL;
    int rc, last = -1;

    if ((unsigned)job->kind >= ARRAY_LEN(kinds))
        return errmsg_set(err, ERR_ALGO, "the sandbox cannot render %s",
                          task_kind_name(job->kind));
    const struct kind *kind = &kinds[job->kind];
    if (stopped(ctl))
        return errmsg_set(err, ERR_STOPPED, "stopped before rendering");

    /* ~1 MB of state (pictures are pointed to): on the heap, not the stack
     * of a worker thread. */
    r = xcalloc(1, sizeof(*r));
    r->job = job;
    r->in = in;
    r->ctl = ctl;
    r->hash = sandbox__job_hash(job);
    rc = kind->setup(r, err);
    if (rc < 0)
        goto out;
    sandbox__synth_init(&r->synth, r->hash, r->frames * FRAME_SAMPLES);
    if (stopped(ctl)) {
        rc = errmsg_set(err, ERR_STOPPED, "stopped before rendering");
        goto out;
    }
    rc = media_writer_new(out_path, r->width, r->height, MEDIA_FPS, &w, err);
    if (rc < 0)
        goto out;
    progress(ctl, 0, &last);
    for (int64_t t = 0; t < r->frames; t++) {
        if (stopped(ctl)) {
            rc = errmsg_set(err, ERR_STOPPED,
                            "stopped after %lld of %lld frames", (long long)t,
                            (long long)r->frames);
            goto out;
        }
        struct media_frame f;
        rc = media_writer_frame(w, &f, err);
        if (rc == 0)
            rc = kind->draw(r, &f, t, err);
        if (rc < 0)
            goto out;
        if (job->watermark)
            media_draw_watermark(&f, MARK_TEXT);
        rc = media_writer_push(w, err);
        if (rc == 0)
            rc = push_audio(r, w, err);
        if (rc < 0)
            goto out;
        /* 99 at most until the file is complete. */
        progress(ctl, (int)((t + 1) * 99 / r->frames), &last);
    }
    rc = media_writer_finish(w, err);
    if (rc < 0)
        goto out;
    progress(ctl, 100, &last);
    *res = r->res;
out:
    media_writer_free(w);
    if (r)
        render_fini(r);
    free(r);
    return rc;
}
