/*
 * Private to src/engine's sandbox (sandbox.c, scene.c): the seeded
 * picture and sound every render draws from: the job's hash and the
 * random numbers drawn from it, the t2v scene (bands and bouncing shapes)
 * and the soft chord of the soundtrack.
 */
#ifndef PADDOCK_ENGINE_SANDBOX_INT_H
#define PADDOCK_ENGINE_SANDBOX_INT_H

#include "engine.h"

#include "../media/media.h"

#include <stdint.h>

#define SHAPES_MAX 6
/* The soundtrack's sine table: 1 << SINE_BITS samples. */
#define SINE_BITS 12

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

struct synth {
    int16_t sine[1 << SINE_BITS];
    uint32_t phase[3], inc[3];
    int64_t at, total; /* next sample; samples in the clip */
};

/* Everything that shapes the picture; not the watermark, which only adds
 * the mark in its corner. */
uint64_t sandbox__job_hash(const struct job *job);

/* Uniform in [lo, hi] (the tiny modulo bias does not matter here). */
int sandbox__rnd(uint64_t *state, int lo, int hi);

/* A bright colour: one channel high, one low, one anywhere. */
struct media_yuv sandbox__bright(uint64_t *st);

void sandbox__scene_init(struct scene *s, const struct job *job, int w, int h);

void sandbox__scene_fini(struct scene *s);

/* a / d rounded down for any sign of a (d > 0); `>>` on a negative value
 * is implementation-defined. */
int64_t sandbox__floor_div(int64_t a, int64_t d);

void sandbox__scene_draw(const struct scene *s, const struct media_frame *f,
                         int64_t t);

void sandbox__synth_init(struct synth *s, uint64_t seed, int64_t total);

/* The next n sample pairs into pcm. */
void sandbox__synth_render(struct synth *s, int16_t *pcm, int n);

#endif
