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
#include "engine.h"

#include "../media/media.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARK_TEXT  "AI GENERATED"
#define SHAPES_MAX 6
/* Changing the picture for the same inputs bumps this. */
#define SCENE_VERSION "paddock-sandbox-1"

/* ------------------------------------------------------------ randomness */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A field with its length first, so ("ab","c") and ("a","bc") differ. */
static uint64_t hash_field(uint64_t h, const void *p, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    return fnv1a(fnv1a(h, len, sizeof(len)), p, n);
}

static uint64_t hash_int(uint64_t h, int64_t v)
{
    unsigned char b[8]; /* little-endian whatever the host */
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    return hash_field(h, b, sizeof(b));
}

/* Everything that shapes the picture; not the watermark, which only adds
 * the mark in its corner. */
static uint64_t job_hash(const struct job *job)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *prompt = job->prompt ? job->prompt : "";
    h = hash_field(h, SCENE_VERSION, strlen(SCENE_VERSION));
    h = hash_field(h, job->model, strlen(job->model));
    h = hash_field(h, prompt, strlen(prompt));
    h = hash_int(h, job->seed);
    h = hash_int(h, job->resolution);
    h = hash_field(h, job->ratio, strlen(job->ratio));
    h = hash_int(h, job->duration);
    return h;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (the tiny modulo bias does not matter here). */
static int rnd(uint64_t *state, int lo, int hi)
{
    return lo + (int)(splitmix64(state) % (uint64_t)(hi - lo + 1));
}

/* ----------------------------------------------------------------- scene */

/*
 * One plane's background at frame 0:
 *   value(x, y) = row[y mod row_p] + col[(x + slope*y/16) mod col_p],
 * a gradient of diagonal bands. Both tables are built so their sum never
 * exceeds 255, which lets a row be drawn 8 bytes at a time without carries
 * between bytes. Frame t shows the same picture shifted by t times the
 * scene's pan (whole pixels, the same for all three planes): an exact
 * translation, which the encoder predicts with one motion vector, so a
 * moving background costs little more to encode than a still one.
 */
struct band {
    uint8_t *row; /* row_p entries */
    uint8_t *col; /* col_p + width + 8 entries: one period, then a copy */
    int row_p, col_p;
    int slope; /* column shift per row, 1/16 pixel */
};

struct shape {
    bool disc; /* else a translucent rectangle */
    int size;  /* disc radius, or rectangle half side, in pixels */
    struct media_yuv color;
    int x0, y0, vx, vy; /* start and speed, 1/256 pixel (per frame) */
    uint16_t *half;     /* disc: half-width per luma row offset 0..size */
    uint16_t *chalf;    /* disc: the same at chroma resolution */
};

struct scene {
    int w, h;
    int pan_x, pan_y;    /* background motion, luma pixels per frame (even) */
    struct band band[3]; /* Y, U, V */
    struct shape shape[SHAPES_MAX];
    int n_shapes;
};

/* A smooth wave over one period, 0..amp: a triangle eased by smoothstep
 * (integer math: no libm, the same bytes on every machine). */
static uint8_t wave(int i, int period, int amp)
{
    int64_t u = (int64_t)i * 65536 / period;               /* 0..65535 */
    int64_t t = u < 32768 ? 2 * u : 2 * (65536 - u);       /* 0..65536 */
    int64_t s = (t * t >> 16) * (3 * 65536 - 2 * t) >> 16; /* 0..65536 */
    return (uint8_t)((amp * s + 32768) >> 16);
}

/* Speed (1/256 pixel per frame) that crosses `period` pixels in `lo`..`hi`
 * seconds, either way. */
static int speed(uint64_t *st, int period, int lo, int hi)
{
    int v = period * 256 / (MEDIA_FPS * rnd(st, lo, hi));
    return rnd(st, 0, 1) ? v : -v;
}

static void band_init(struct band *b, uint64_t *st, int pw, int ph, int base,
                      int row_amp, int col_amp)
{
    b->row_p = rnd(st, ph / 2, ph * 2);
    b->col_p = rnd(st, pw / 3, pw * 3 / 2);
    b->slope = rnd(st, -24, 24);
    int phase = rnd(st, 0, b->row_p - 1);
    b->row = xmalloc((size_t)b->row_p);
    for (int i = 0; i < b->row_p; i++)
        b->row[i] =
            (uint8_t)(base + wave((i + phase) % b->row_p, b->row_p, row_amp));
    size_t n = (size_t)b->col_p + (size_t)pw + 8;
    b->col = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        b->col[i] = wave((int)(i % (size_t)b->col_p), b->col_p, col_amp);
}

static uint16_t *disc_table(int r)
{
    uint16_t *t = xmalloc(((size_t)r + 1) * sizeof(*t));
    for (int dy = 0; dy <= r; dy++) {
        int hw = 0; /* integer square root of r^2 - dy^2 */
        while ((hw + 1) * (hw + 1) <= r * r - dy * dy)
            hw++;
        t[dy] = (uint16_t)hw;
    }
    return t;
}

/* A bright colour: one channel high, one low, one anywhere. */
static struct media_yuv bright(uint64_t *st)
{
    uint8_t c[3];
    int hi = rnd(st, 0, 2), lo = (hi + rnd(st, 1, 2)) % 3;
    for (int i = 0; i < 3; i++)
        c[i] = (uint8_t)rnd(st, 0, 255);
    c[hi] = (uint8_t)rnd(st, 200, 255);
    c[lo] = (uint8_t)rnd(st, 0, 60);
    return media_rgb(c[0], c[1], c[2]);
}

static void scene_init(struct scene *s, const struct job *job, int w, int h)
{
    uint64_t st = job_hash(job);
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    int shorter = w < h ? w : h;

    memset(s, 0, sizeof(*s));
    s->w = w;
    s->h = h;
    /* Luma: 16..235 in total; chroma: around 128, never above 240. */
    int ya = rnd(&st, 60, 110), yb = rnd(&st, 50, 100);
    band_init(&s->band[0], &st, w, h, 16 + rnd(&st, 0, 219 - ya - yb), ya, yb);
    for (int p = 1; p <= 2; p++) {
        int a = rnd(&st, 20, 60), b = rnd(&st, 20, 60);
        band_init(&s->band[p], &st, cw, ch, 128 - (a + b) / 2, a, b);
    }
    /* 0 to 6 pixels a frame each way (even: chroma moves whole samples
     * too), never standing still. */
    s->pan_x = 2 * rnd(&st, -3, 3);
    s->pan_y = 2 * rnd(&st, -3, 3);
    if (s->pan_x == 0 && s->pan_y == 0)
        s->pan_x = 2;
    s->n_shapes = rnd(&st, 3, SHAPES_MAX);
    for (int i = 0; i < s->n_shapes; i++) {
        struct shape *sh = &s->shape[i];
        sh->disc = i % 2 == 0; /* at least two discs and one rectangle */
        sh->size = shorter * rnd(&st, 5, 13) / 100;
        sh->color = bright(&st);
        sh->x0 = rnd(&st, 0, w - 2 * sh->size) * 256;
        sh->y0 = rnd(&st, 0, h - 2 * sh->size) * 256;
        sh->vx = speed(&st, w, 2, 6);
        sh->vy = speed(&st, h, 2, 6);
        if (sh->disc) {
            sh->half = disc_table(sh->size);
            sh->chalf = disc_table(sh->size / 2);
        }
    }
}

static void scene_fini(struct scene *s)
{
    for (int p = 0; p < 3; p++) {
        free(s->band[p].row);
        free(s->band[p].col);
    }
    for (int i = 0; i < s->n_shapes; i++) {
        free(s->shape[i].half);
        free(s->shape[i].chalf);
    }
}

/* a mod m in 0..m-1 for any sign of a. */
static int64_t wrap(int64_t a, int64_t m)
{
    a %= m;
    return a < 0 ? a + m : a;
}

/* a / d rounded down for any sign of a (d > 0); `>>` on a negative value
 * is implementation-defined. */
static int64_t floor_div(int64_t a, int64_t d)
{
    return a >= 0 ? a / d : -((-a + d - 1) / d);
}

/* dst[i] = src[i] + add, 8 bytes per step; no byte ever carries. */
static void add_row(uint8_t *dst, const uint8_t *src, uint8_t add, int n)
{
    uint64_t a = add * 0x0101010101010101ULL;
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        uint64_t v;
        memcpy(&v, src + x, 8);
        v += a;
        memcpy(dst + x, &v, 8);
    }
    for (; x < n; x++)
        dst[x] = (uint8_t)(src[x] + add);
}

/* The plane's bands shifted by (ox, oy) pixels. */
static void draw_band(const struct band *b, uint8_t *plane, int linesize,
                      int pw, int ph, int64_t ox, int64_t oy)
{
    for (int y = 0; y < ph; y++) {
        int64_t yy = y + oy;
        uint8_t add = b->row[wrap(yy, b->row_p)];
        int64_t o = wrap(ox + floor_div(b->slope * yy, 16), b->col_p);
        add_row(plane + (size_t)y * linesize, b->col + o, add, pw);
    }
}

/* Bounce p (1/256 px) inside [0, range] px: fold it like a triangle. */
static int bounce(int64_t p, int range)
{
    if (range <= 0)
        return 0;
    int64_t r = (int64_t)range * 256;
    p = wrap(p, 2 * r);
    return (int)((p > r ? 2 * r - p : p) >> 8);
}

static void span(uint8_t *row, int width, int cx, int hw, uint8_t v)
{
    int x0 = cx - hw < 0 ? 0 : cx - hw;
    int x1 = cx + hw + 1 > width ? width : cx + hw + 1;
    if (x1 > x0)
        memset(row + x0, v, (size_t)(x1 - x0));
}

static void draw_disc(const struct media_frame *f, const struct shape *sh,
                      int cx, int cy)
{
    int r = sh->size, cr = sh->size / 2;
    int cw = (f->width + 1) / 2, ch = (f->height + 1) / 2;
    for (int dy = -r; dy <= r; dy++) {
        int y = cy + dy;
        if (y >= 0 && y < f->height)
            span(f->data[0] + (size_t)y * f->linesize[0], f->width, cx,
                 sh->half[abs(dy)], sh->color.y);
    }
    for (int dy = -cr; dy <= cr; dy++) {
        int y = cy / 2 + dy;
        if (y < 0 || y >= ch)
            continue;
        int hw = sh->chalf[abs(dy)];
        span(f->data[1] + (size_t)y * f->linesize[1], cw, cx / 2, hw,
             sh->color.u);
        span(f->data[2] + (size_t)y * f->linesize[2], cw, cx / 2, hw,
             sh->color.v);
    }
}

static void scene_draw(const struct scene *s, const struct media_frame *f,
                       int64_t t)
{
    int cw = (s->w + 1) / 2, ch = (s->h + 1) / 2;
    int64_t ox = s->pan_x * t, oy = s->pan_y * t;
    draw_band(&s->band[0], f->data[0], f->linesize[0], s->w, s->h, ox, oy);
    draw_band(&s->band[1], f->data[1], f->linesize[1], cw, ch, ox / 2, oy / 2);
    draw_band(&s->band[2], f->data[2], f->linesize[2], cw, ch, ox / 2, oy / 2);
    for (int i = 0; i < s->n_shapes; i++) {
        const struct shape *sh = &s->shape[i];
        int d = 2 * sh->size;
        int x = bounce(sh->x0 + sh->vx * t, s->w - d);
        int y = bounce(sh->y0 + sh->vy * t, s->h - d);
        if (sh->disc)
            draw_disc(f, sh, x + sh->size, y + sh->size);
        else
            media_blend_rect(f, x, y, d, d, sh->color, 176);
    }
}

/* ----------------------------------------------------------------- audio */

/*
 * The generated soundtrack: a soft triad, seeded, fading in and out, in
 * integer math (the same samples everywhere). One period of a sine in a
 * table made with Bhaskara's rational approximation (error under 0.2 %),
 * three phase accumulators indexing it.
 */
#define SINE_BITS  12
#define SYNTH_AMP  2600 /* per voice, of 32767: three stay under -10 dBFS */
#define SYNTH_FADE (MEDIA_AUDIO_RATE / 2)

/* A3 (220 Hz) and the 24 equal-tempered semitones above, in mHz. */
static const uint32_t note_mhz[] = {
    220000, 233082, 246942, 261626, 277183, 293665, 311127, 329628, 349228,
    369994, 391995, 415305, 440000, 466164, 493883, 523251, 554365, 587330,
    622254, 659255, 698456, 739989, 783991, 830609, 880000,
};

struct synth {
    int16_t sine[1 << SINE_BITS];
    uint32_t phase[3], inc[3];
    int64_t at, total; /* next sample; samples in the clip */
};

static void synth_init(struct synth *s, uint64_t seed, int64_t total)
{
    int n = 1 << SINE_BITS, half = n / 2;
    for (int i = 0; i < n; i++) {
        /* sin(pi x) ~ 16 x (1 - x) / (5 - 4 x (1 - x)) on one half wave. */
        int64_t u = (int64_t)(i % half) * 65536 / half; /* x * 65536 */
        int64_t q = u * (65536 - u);                    /* x(1-x) * 2^32 */
        int64_t v = 32767 * 16 * q / (5 * (INT64_C(1) << 32) - 4 * q);
        s->sine[i] = (int16_t)(i < half ? v : -v);
    }
    uint64_t st = seed ^ 0x5ca1ab1e5eedULL;
    int root = rnd(&st, 0, 11), third = rnd(&st, 0, 1) ? 4 : 3;
    int notes[3] = { root, root + third, root + 7 };
    for (int k = 0; k < 3; k++) {
        s->phase[k] = (uint32_t)splitmix64(&st);
        s->inc[k] = (uint32_t)(((uint64_t)note_mhz[notes[k]] << 32) /
                               (MEDIA_AUDIO_RATE * 1000ULL));
    }
    s->at = 0;
    s->total = total;
}

/* The next n sample pairs into pcm. */
static void synth_render(struct synth *s, int16_t *pcm, int n)
{
    for (int i = 0; i < n; i++, s->at++) {
        int v[3];
        for (int k = 0; k < 3; k++) {
            v[k] = s->sine[s->phase[k] >> (32 - SINE_BITS)];
            s->phase[k] += s->inc[k];
        }
        int64_t edge = s->at < s->total - s->at ? s->at : s->total - s->at;
        int env = edge >= SYNTH_FADE ? 256 : (int)(edge * 256 / SYNTH_FADE);
        /* Root in the middle, third to the left, fifth to the right. */
        int l = (v[0] * 2 + v[1] * 3 + v[2]) * SYNTH_AMP / (2 * 32767);
        int r = (v[0] * 2 + v[1] + v[2] * 3) * SYNTH_AMP / (2 * 32767);
        pcm[2 * i] = (int16_t)(l * env / 256);
        pcm[2 * i + 1] = (int16_t)(r * env / 256);
    }
}

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
    scene_fini(&r->scene);
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
    scene_init(&r->scene, r->job, r->width, r->height);
    usage_generated(r, r->job->ratio);
    return 0;
}

static int t2v_draw(struct render *r, const struct media_frame *f, int64_t t,
                    struct errmsg *err)
{
    (void)err;
    scene_draw(&r->scene, f, t);
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
    r->zoom_q16 = 65536 + rnd(&st, 6554, 11796);
    r->focus_x = rnd(&st, r->width / 4, r->width * 3 / 4);
    r->focus_y = rnd(&st, r->height / 4, r->height * 3 / 4);
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
    int64_t cx = mx + floor_div(((int64_t)r->focus_x * 65536 - mx) * e, 65536);
    int64_t cy = my + floor_div(((int64_t)r->focus_y * 65536 - my) * e, 65536);
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
        int sx = rnd(&st, 0, 1), sy = rnd(&st, 0, 1);
        r->pan[k][0] = sx ? (cw - r->width) & ~1 : 0;
        r->pan[k][1] = sy ? (ch - r->height) & ~1 : 0;
        r->pan[k][2] = sx ? 0 : (cw - r->width) & ~1;
        r->pan[k][3] =
            rnd(&st, 0, 1) ? r->pan[k][1] : (sy ? 0 : (ch - r->height) & ~1);
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
    r->grade[0] = (struct media_grade){ rnd(&st, 54, 74), rnd(&st, -14, 14),
                                        126, 16, 235 };
    int sat = rnd(&st, 38, 82);
    for (int p = 1; p <= 2; p++)
        r->grade[p] =
            (struct media_grade){ sat, rnd(&st, -22, 22), 128, 16, 240 };
    r->band_w = r->width / rnd(&st, 6, 10);
    r->band_speed = ((r->width + r->band_w) * 256 / (int)r->frames) *
                    (rnd(&st, 0, 1) ? 1 : -1);
    r->band_color = bright(&st);

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
        synth_render(&r->synth, pcm, FRAME_SAMPLES);
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
    r->hash = job_hash(job);
    rc = kind->setup(r, err);
    if (rc < 0)
        goto out;
    synth_init(&r->synth, r->hash, r->frames * FRAME_SAMPLES);
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
