/*
 * The sandbox's seeded picture and sound (sandbox_int.h): the job's hash
 * (every field that shapes the video, lengths first), splitmix64 draws
 * from it, the t2v scene (colour bands panning, shapes bouncing over them,
 * drawn with integer math straight into the encoder's planes) and a soft
 * seeded chord for the soundtrack. A pure function of the job: the same
 * request gives the same bytes.
 */
#include "sandbox_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
uint64_t sandbox__job_hash(const struct job *job)
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
int sandbox__rnd(uint64_t *state, int lo, int hi)
{
    return lo + (int)(splitmix64(state) % (uint64_t)(hi - lo + 1));
}

/* ----------------------------------------------------------------- scene */

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
    int v = period * 256 / (MEDIA_FPS * sandbox__rnd(st, lo, hi));
    return sandbox__rnd(st, 0, 1) ? v : -v;
}

static void band_init(struct band *b, uint64_t *st, int pw, int ph, int base,
                      int row_amp, int col_amp)
{
    b->row_p = sandbox__rnd(st, ph / 2, ph * 2);
    b->col_p = sandbox__rnd(st, pw / 3, pw * 3 / 2);
    b->slope = sandbox__rnd(st, -24, 24);
    int phase = sandbox__rnd(st, 0, b->row_p - 1);
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
struct media_yuv sandbox__bright(uint64_t *st)
{
    uint8_t c[3];
    int hi = sandbox__rnd(st, 0, 2), lo = (hi + sandbox__rnd(st, 1, 2)) % 3;
    for (int i = 0; i < 3; i++)
        c[i] = (uint8_t)sandbox__rnd(st, 0, 255);
    c[hi] = (uint8_t)sandbox__rnd(st, 200, 255);
    c[lo] = (uint8_t)sandbox__rnd(st, 0, 60);
    return media_rgb(c[0], c[1], c[2]);
}

void sandbox__scene_init(struct scene *s, const struct job *job, int w, int h)
{
    uint64_t st = sandbox__job_hash(job);
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    int shorter = w < h ? w : h;

    memset(s, 0, sizeof(*s));
    s->w = w;
    s->h = h;
    /* Luma: 16..235 in total; chroma: around 128, never above 240. */
    int ya = sandbox__rnd(&st, 60, 110), yb = sandbox__rnd(&st, 50, 100);
    band_init(&s->band[0], &st, w, h, 16 + sandbox__rnd(&st, 0, 219 - ya - yb),
              ya, yb);
    for (int p = 1; p <= 2; p++) {
        int a = sandbox__rnd(&st, 20, 60), b = sandbox__rnd(&st, 20, 60);
        band_init(&s->band[p], &st, cw, ch, 128 - (a + b) / 2, a, b);
    }
    /* 0 to 6 pixels a frame each way (even: chroma moves whole samples
     * too), never standing still. */
    s->pan_x = 2 * sandbox__rnd(&st, -3, 3);
    s->pan_y = 2 * sandbox__rnd(&st, -3, 3);
    if (s->pan_x == 0 && s->pan_y == 0)
        s->pan_x = 2;
    s->n_shapes = sandbox__rnd(&st, 3, SHAPES_MAX);
    for (int i = 0; i < s->n_shapes; i++) {
        struct shape *sh = &s->shape[i];
        sh->disc = i % 2 == 0; /* at least two discs and one rectangle */
        sh->size = shorter * sandbox__rnd(&st, 5, 13) / 100;
        sh->color = sandbox__bright(&st);
        sh->x0 = sandbox__rnd(&st, 0, w - 2 * sh->size) * 256;
        sh->y0 = sandbox__rnd(&st, 0, h - 2 * sh->size) * 256;
        sh->vx = speed(&st, w, 2, 6);
        sh->vy = speed(&st, h, 2, 6);
        if (sh->disc) {
            sh->half = disc_table(sh->size);
            sh->chalf = disc_table(sh->size / 2);
        }
    }
}

void sandbox__scene_fini(struct scene *s)
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
int64_t sandbox__floor_div(int64_t a, int64_t d)
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
        int64_t o = wrap(ox + sandbox__floor_div(b->slope * yy, 16), b->col_p);
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

void sandbox__scene_draw(const struct scene *s, const struct media_frame *f,
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
#define SYNTH_AMP  2600 /* per voice, of 32767: three stay under -10 dBFS */
#define SYNTH_FADE (MEDIA_AUDIO_RATE / 2)

/* A3 (220 Hz) and the 24 equal-tempered semitones above, in mHz. */
static const uint32_t note_mhz[] = {
    220000, 233082, 246942, 261626, 277183, 293665, 311127, 329628, 349228,
    369994, 391995, 415305, 440000, 466164, 493883, 523251, 554365, 587330,
    622254, 659255, 698456, 739989, 783991, 830609, 880000,
};

void sandbox__synth_init(struct synth *s, uint64_t seed, int64_t total)
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
    int root = sandbox__rnd(&st, 0, 11),
        third = sandbox__rnd(&st, 0, 1) ? 4 : 3;
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
void sandbox__synth_render(struct synth *s, int16_t *pcm, int n)
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
