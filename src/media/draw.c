/*
 * Drawing on yuv420p frames: rectangles, blended rectangles, a 5x7 bitmap
 * font and the watermark. Integer math only, so every machine draws the
 * same bytes.
 */
#include "media.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Glyph rows, top to bottom; bit 4 is the leftmost column. */
#define GLYPH_W 5
#define GLYPH_H 7

static const uint8_t font[128][GLYPH_H] = {
    ['A'] = { 0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 },
    ['B'] = { 0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E },
    ['C'] = { 0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E },
    ['D'] = { 0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C },
    ['E'] = { 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F },
    ['F'] = { 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10 },
    ['G'] = { 0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F },
    ['H'] = { 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 },
    ['I'] = { 0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E },
    ['J'] = { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C },
    ['K'] = { 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 },
    ['L'] = { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F },
    ['M'] = { 0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11 },
    ['N'] = { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 },
    ['O'] = { 0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E },
    ['P'] = { 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10 },
    ['Q'] = { 0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D },
    ['R'] = { 0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11 },
    ['S'] = { 0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E },
    ['T'] = { 0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 },
    ['U'] = { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E },
    ['V'] = { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04 },
    ['W'] = { 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A },
    ['X'] = { 0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11 },
    ['Y'] = { 0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04 },
    ['Z'] = { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F },
    ['0'] = { 0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E },
    ['1'] = { 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E },
    ['2'] = { 0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F },
    ['3'] = { 0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E },
    ['4'] = { 0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02 },
    ['5'] = { 0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E },
    ['6'] = { 0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E },
    ['7'] = { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 },
    ['8'] = { 0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E },
    ['9'] = { 0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C },
    ['.'] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C },
    [','] = { 0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08 },
    [':'] = { 0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00 },
    [';'] = { 0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08 },
    ['-'] = { 0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00 },
    ['+'] = { 0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00 },
    ['_'] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F },
    ['/'] = { 0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00 },
    ['!'] = { 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04 },
    ['?'] = { 0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04 },
    ['%'] = { 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03 },
    ['#'] = { 0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A },
    ['('] = { 0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02 },
    [')'] = { 0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08 },
    ['\''] = { 0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00 },
    ['"'] = { 0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00 },
    ['='] = { 0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00 },
    ['*'] = { 0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00 },
};

/* The watermark box: text colour, box colour and its opacity (/256). */
#define MARK_ALPHA 112

struct media_yuv media_rgb(uint8_t r, uint8_t g, uint8_t b)
{
    /* BT.709, limited range, coefficients x256 (each chroma row sums to 0, so
     * greys stay neutral); the offsets keep every intermediate non-negative so
     * the shifts are plain divisions. */
    struct media_yuv c;
    c.y = (uint8_t)(((47 * r + 157 * g + 16 * b + 128) >> 8) + 16);
    c.u = (uint8_t)((-26 * r - 86 * g + 112 * b + 128 + (128 << 8)) >> 8);
    c.v = (uint8_t)((112 * r - 102 * g - 10 * b + 128 + (128 << 8)) >> 8);
    return c;
}

/* Clip [x, x+w) x [y, y+h) to the frame; false when nothing is left. */
static bool clip(const struct media_frame *f, int *x, int *y, int *w, int *h)
{
    int x0 = *x < 0 ? 0 : *x, y0 = *y < 0 ? 0 : *y;
    int x1 = *x + *w > f->width ? f->width : *x + *w;
    int y1 = *y + *h > f->height ? f->height : *y + *h;
    if (x1 <= x0 || y1 <= y0)
        return false;
    *x = x0;
    *y = y0;
    *w = x1 - x0;
    *h = y1 - y0;
    return true;
}

void media_fill_rect(const struct media_frame *f, int x, int y, int w, int h,
                     struct media_yuv c)
{
    if (!clip(f, &x, &y, &w, &h))
        return;
    for (int j = y; j < y + h; j++)
        memset(f->data[0] + (size_t)j * f->linesize[0] + x, c.y, (size_t)w);
    /* Every chroma sample the rectangle touches. */
    int cx0 = x >> 1, cx1 = (x + w + 1) >> 1;
    int cy0 = y >> 1, cy1 = (y + h + 1) >> 1;
    for (int j = cy0; j < cy1; j++) {
        memset(f->data[1] + (size_t)j * f->linesize[1] + cx0, c.u,
               (size_t)(cx1 - cx0));
        memset(f->data[2] + (size_t)j * f->linesize[2] + cx0, c.v,
               (size_t)(cx1 - cx0));
    }
}

/*
 * GNU C vector types (gcc and clang): 8 lanes of 16 bits, one instruction
 * per operation on SSE2 and NEON, so the blends below run 8 pixels a step
 * at -O2, where gcc leaves plain loops scalar.
 */
typedef uint8_t u8x8 __attribute__((vector_size(8)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));

static u16x8 splat(int v)
{
    return (u16x8){ 0 } + (uint16_t)v;
}

/* d = (a * (256 - w) + b * w + 128) >> 8, w in 0..256; every sum fits 16
 * bits (255 * 256 + 128). d may be a or b. */
static void mix_row(uint8_t *d, const uint8_t *a, const uint8_t *b, int w,
                    int n)
{
    u16x8 ka = splat(256 - w), kb = splat(w), half = splat(128);
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        u8x8 va, vb;
        memcpy(&va, a + x, 8);
        memcpy(&vb, b + x, 8);
        u16x8 v = (__builtin_convertvector(va, u16x8) * ka +
                   __builtin_convertvector(vb, u16x8) * kb + half) >>
                  8;
        u8x8 o = __builtin_convertvector(v, u8x8);
        memcpy(d + x, &o, 8);
    }
    for (; x < n; x++)
        d[x] = (uint8_t)((a[x] * (256 - w) + b[x] * w + 128) >> 8);
}

static void blend_span(uint8_t *p, int n, int value, int alpha)
{
    u16x8 keep = splat(256 - alpha), add = splat(value * alpha + 128);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        u8x8 v;
        memcpy(&v, p + i, 8);
        v = __builtin_convertvector(
            (__builtin_convertvector(v, u16x8) * keep + add) >> 8, u8x8);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)((p[i] * (256 - alpha) + value * alpha + 128) >> 8);
}

void media_blend_rect(const struct media_frame *f, int x, int y, int w, int h,
                      struct media_yuv c, int alpha)
{
    if (alpha <= 0 || !clip(f, &x, &y, &w, &h))
        return;
    if (alpha > 256)
        alpha = 256;
    for (int j = y; j < y + h; j++)
        blend_span(f->data[0] + (size_t)j * f->linesize[0] + x, w, c.y, alpha);
    int cx0 = x >> 1, cx1 = (x + w + 1) >> 1;
    int cy0 = y >> 1, cy1 = (y + h + 1) >> 1;
    for (int j = cy0; j < cy1; j++) {
        blend_span(f->data[1] + (size_t)j * f->linesize[1] + cx0, cx1 - cx0,
                   c.u, alpha);
        blend_span(f->data[2] + (size_t)j * f->linesize[2] + cx0, cx1 - cx0,
                   c.v, alpha);
    }
}

static const uint8_t *glyph(unsigned char ch)
{
    static const uint8_t blank[GLYPH_H] = { 0 };
    if (ch >= 'a' && ch <= 'z')
        ch = (unsigned char)(ch - 'a' + 'A');
    if (ch == ' ')
        return blank;
    if (ch < 128) {
        const uint8_t *g = font[ch];
        for (int r = 0; r < GLYPH_H; r++)
            if (g[r])
                return g;
    }
    return font['?'];
}

int media_text_width(const char *text, int scale)
{
    size_t n = strlen(text);
    /* One blank column between glyphs, none after the last. */
    return n ? (int)n * (GLYPH_W + 1) * scale - scale : 0;
}

int media_text_height(int scale)
{
    return GLYPH_H * scale;
}

void media_draw_text(const struct media_frame *f, int x, int y, int scale,
                     const char *text, struct media_yuv c)
{
    if (scale < 1)
        scale = 1;
    for (const char *p = text; *p; p++, x += (GLYPH_W + 1) * scale) {
        const uint8_t *g = glyph((unsigned char)*p);
        for (int r = 0; r < GLYPH_H; r++) {
            /* Runs of set bits become one rectangle each. */
            for (int col = 0; col < GLYPH_W;) {
                if (!(g[r] & (0x10 >> col))) {
                    col++;
                    continue;
                }
                int run = col;
                while (run < GLYPH_W && (g[r] & (0x10 >> run)))
                    run++;
                media_fill_rect(f, x + col * scale, y + r * scale,
                                (run - col) * scale, scale, c);
                col = run;
            }
        }
    }
}

/* Font pixel size for a frame: 2 at 480P, 3 at 720P, 5 at 1080P. */
static int mark_scale(int width, int height)
{
    int s = width < height ? width : height;
    s = (s + 120) / 240;
    return s < 1 ? 1 : s;
}

void media_watermark_box(int width, int height, const char *text, int *x,
                         int *y, int *w, int *h)
{
    int s = mark_scale(width, height);
    int shorter = width < height ? width : height;
    int margin = shorter / 40 > 2 * s ? shorter / 40 : 2 * s;
    /* Even sides and corner: the box covers whole chroma samples, so the
     * mark changes nothing outside it. */
    *w = (media_text_width(text, s) + 4 * s + 1) & ~1;
    *h = (media_text_height(s) + 4 * s + 1) & ~1;
    *x = (width - margin - *w) & ~1;
    *y = (height - margin - *h) & ~1;
}

void media_draw_watermark(const struct media_frame *f, const char *text)
{
    int x, y, w, h, s = mark_scale(f->width, f->height);
    media_watermark_box(f->width, f->height, text, &x, &y, &w, &h);
    media_blend_rect(f, x, y, w, h, media_rgb(0, 0, 0), MARK_ALPHA);
    media_draw_text(f, x + 2 * s, y + 2 * s, s, text, media_rgb(255, 255, 255));
}

/* ------------------------------------------------------------- pictures */

#define PLANE_ALIGN 64

static int align_up(int n)
{
    return (n + PLANE_ALIGN - 1) & ~(PLANE_ALIGN - 1);
}

void media_picture_init(struct media_picture *p, int width, int height)
{
    int cw = (width + 1) / 2, ch = (height + 1) / 2;
    int ls = align_up(width), cls = align_up(cw);
    size_t luma = (size_t)ls * height, chroma = (size_t)cls * ch;
    /* ls and cls are multiples of 64, so is every plane's size. */
    /* Every plane starts on a 64-byte boundary, like libav's. */
    p->mem = xmalloc(luma + 2 * chroma + 3 * PLANE_ALIGN);
    uint8_t *at = (uint8_t *)(((uintptr_t)p->mem + PLANE_ALIGN - 1) &
                              ~(uintptr_t)(PLANE_ALIGN - 1));
    p->f.data[0] = at;
    p->f.data[1] = at + luma;
    p->f.data[2] = p->f.data[1] + chroma;
    p->f.linesize[0] = ls;
    p->f.linesize[1] = p->f.linesize[2] = cls;
    p->f.width = width;
    p->f.height = height;
}

void media_picture_fini(struct media_picture *p)
{
    free(p->mem);
    memset(p, 0, sizeof(*p));
}

struct media_frame media_frame_window(const struct media_frame *f, int x, int y,
                                      int w, int h)
{
    struct media_frame out = *f;
    x = x < 0 ? 0 : x & ~1;
    y = y < 0 ? 0 : y & ~1;
    if (x > f->width)
        x = f->width & ~1;
    if (y > f->height)
        y = f->height & ~1;
    out.width = w < 0 ? 0 : w > f->width - x ? f->width - x : w;
    out.height = h < 0 ? 0 : h > f->height - y ? f->height - y : h;
    out.data[0] = f->data[0] + (size_t)y * f->linesize[0] + x;
    for (int p = 1; p < 3; p++)
        out.data[p] = f->data[p] + (size_t)(y / 2) * f->linesize[p] + x / 2;
    return out;
}

/* The size both frames have, luma and chroma. */
static void common_size(const struct media_frame *a,
                        const struct media_frame *b, int *w, int *h)
{
    *w = a->width < b->width ? a->width : b->width;
    *h = a->height < b->height ? a->height : b->height;
}

void media_copy(const struct media_frame *dst, const struct media_frame *src)
{
    int w, h;
    common_size(dst, src, &w, &h);
    for (int p = 0; p < 3; p++) {
        int pw = p ? (w + 1) / 2 : w, ph = p ? (h + 1) / 2 : h;
        for (int y = 0; y < ph; y++)
            memcpy(dst->data[p] + (size_t)y * dst->linesize[p],
                   src->data[p] + (size_t)y * src->linesize[p], (size_t)pw);
    }
}

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* One row of media_copy_grade; the SSE2 body (every x86-64 has it) does
 * 16 pixels a step with the same arithmetic as the scalar tail: |(src -
 * mid) * gain| <= 255 * 128 fits 16 bits, and the pack saturates to 0..255
 * before the clamp to [lo, hi]. */
static void grade_row(uint8_t *d, const uint8_t *s, const struct media_grade *g,
                      int n)
{
    int gain = g->gain < 0 ? 0 : g->gain > 128 ? 128 : g->gain;
    int x = 0;
#ifdef __SSE2__
    const __m128i zero = _mm_setzero_si128();
    const __m128i mid = _mm_set1_epi16((short)g->mid);
    const __m128i k = _mm_set1_epi16((short)gain);
    const __m128i r = _mm_set1_epi16(32);
    const __m128i add = _mm_set1_epi16((short)(g->mid + g->offset));
    const __m128i lo = _mm_set1_epi8((char)g->lo);
    const __m128i hi = _mm_set1_epi8((char)g->hi);
    for (; x + 16 <= n; x += 16) {
        __m128i in = _mm_loadu_si128((const __m128i *)(s + x));
        __m128i a = _mm_sub_epi16(_mm_unpacklo_epi8(in, zero), mid);
        __m128i b = _mm_sub_epi16(_mm_unpackhi_epi8(in, zero), mid);
        a = _mm_add_epi16(
            _mm_srai_epi16(_mm_add_epi16(_mm_mullo_epi16(a, k), r), 6), add);
        b = _mm_add_epi16(
            _mm_srai_epi16(_mm_add_epi16(_mm_mullo_epi16(b, k), r), 6), add);
        __m128i v = _mm_packus_epi16(a, b);
        v = _mm_min_epu8(_mm_max_epu8(v, lo), hi);
        _mm_storeu_si128((__m128i *)(d + x), v);
    }
#endif
    for (; x < n; x++) {
        /* floor(t / 64) like the arithmetic shift above; `>>` of a
         * negative int is implementation-defined in C. */
        int t = (s[x] - g->mid) * gain + 32;
        int v = g->mid + (t >= 0 ? t / 64 : -((-t + 63) / 64)) + g->offset;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        d[x] = (uint8_t)(v < g->lo ? g->lo : v > g->hi ? g->hi : v);
    }
}

void media_copy_grade(const struct media_frame *dst,
                      const struct media_frame *src,
                      const struct media_grade grade[3])
{
    int w, h;
    common_size(dst, src, &w, &h);
    for (int p = 0; p < 3; p++) {
        int pw = p ? (w + 1) / 2 : w, ph = p ? (h + 1) / 2 : h;
        for (int y = 0; y < ph; y++)
            grade_row(dst->data[p] + (size_t)y * dst->linesize[p],
                      src->data[p] + (size_t)y * src->linesize[p], &grade[p],
                      pw);
    }
}

void media_mix(const struct media_frame *dst, const struct media_frame *a,
               const struct media_frame *b, int alpha)
{
    int w, h;
    common_size(dst, a, &w, &h);
    common_size(&(struct media_frame){ .width = w, .height = h }, b, &w, &h);
    alpha = alpha < 0 ? 0 : alpha > 256 ? 256 : alpha;
    for (int p = 0; p < 3; p++) {
        int pw = p ? (w + 1) / 2 : w, ph = p ? (h + 1) / 2 : h;
        for (int y = 0; y < ph; y++)
            mix_row(dst->data[p] + (size_t)y * dst->linesize[p],
                    a->data[p] + (size_t)y * a->linesize[p],
                    b->data[p] + (size_t)y * b->linesize[p], alpha, pw);
    }
}

/*
 * Where each output column of a view samples a source row: the index, the
 * next index (the same at the right edge) and the weight of the next.
 * `blocks` leading runs of 16 columns also have their indices as offsets
 * from the run's first (0..15, since a view never shrinks), for the SSSE3
 * path; they stop before a run would read past the row.
 */
struct cols {
    int *xi, *xi1;
    uint8_t *xf;
    int blocks;
    uint8_t *shuf; /* 16 per block */
};

static void cols_init(struct cols *c, int dw, int sw, int64_t x0, int64_t step)
{
    c->xi = xmalloc((size_t)dw * 2 * sizeof(int));
    c->xi1 = c->xi + dw;
    c->xf = xmalloc((size_t)dw);
    c->shuf = xmalloc((size_t)dw + 16);
    for (int x = 0; x < dw; x++) {
        int64_t sx = x0 + x * step;
        int64_t i = sx < 0 ? 0 : sx >> 16;
        int f = sx < 0 ? 0 : (int)((sx >> 8) & 255);
        if (i >= sw - 1)
            i = sw - 1, f = 0;
        c->xi[x] = (int)i;
        c->xi1[x] = i + 1 < sw ? (int)i + 1 : (int)i;
        c->xf[x] = (uint8_t)f;
    }
    c->blocks = 0;
    for (int b = 0; step <= 65536 && 16 * b + 16 <= dw; b++) {
        int i0 = c->xi[16 * b];
        if (i0 + 16 > sw - 1) /* the run reads row[i0 .. i0 + 16] */
            break;
        for (int k = 0; k < 16; k++)
            c->shuf[16 * b + k] = (uint8_t)(c->xi[16 * b + k] - i0);
        c->blocks = b + 1;
    }
}

static void cols_fini(struct cols *c)
{
    free(c->xi);
    free(c->xf);
    free(c->shuf);
}

/* Columns [from, dw) of source row `row` interpolated across. Both paths
 * compute (a * (256 - f) + b * f + 128) >> 8: the same bytes. */
static void view_row_c(uint8_t *restrict out, const uint8_t *restrict row,
                       const struct cols *c, int from, int dw)
{
    for (int x = from; x < dw; x++) {
        int a = row[c->xi[x]], b = row[c->xi1[x]], f = c->xf[x];
        out[x] = (uint8_t)((a * (256 - f) + b * f + 128) >> 8);
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <tmmintrin.h>

/* 16 columns a step: the run's 17 source bytes loaded twice (at i0 and
 * i0 + 1), spread to the columns by pshufb, blended in 16-bit lanes. */
__attribute__((target("ssse3"))) static void
view_row_ssse3(uint8_t *out, const uint8_t *row, const struct cols *c, int dw)
{
    const __m128i zero = _mm_setzero_si128(), k256 = _mm_set1_epi16(256);
    const __m128i half = _mm_set1_epi16(128);
    for (int b = 0; b < c->blocks; b++) {
        const uint8_t *p = row + c->xi[16 * b];
        __m128i idx = _mm_loadu_si128((const __m128i *)(c->shuf + 16 * b));
        __m128i a = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), idx);
        __m128i n =
            _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 1)), idx);
        __m128i f = _mm_loadu_si128((const __m128i *)(c->xf + 16 * b));
        __m128i lo[3] = { _mm_unpacklo_epi8(a, zero),
                          _mm_unpacklo_epi8(n, zero),
                          _mm_unpacklo_epi8(f, zero) };
        __m128i hi[3] = { _mm_unpackhi_epi8(a, zero),
                          _mm_unpackhi_epi8(n, zero),
                          _mm_unpackhi_epi8(f, zero) };
        /* Each sum is at most 255 * 256 + 128: no 16-bit overflow. */
        __m128i l = _mm_add_epi16(
            _mm_add_epi16(_mm_mullo_epi16(lo[0], _mm_sub_epi16(k256, lo[2])),
                          _mm_mullo_epi16(lo[1], lo[2])),
            half);
        __m128i h = _mm_add_epi16(
            _mm_add_epi16(_mm_mullo_epi16(hi[0], _mm_sub_epi16(k256, hi[2])),
                          _mm_mullo_epi16(hi[1], hi[2])),
            half);
        _mm_storeu_si128(
            (__m128i *)(out + 16 * b),
            _mm_packus_epi16(_mm_srli_epi16(l, 8), _mm_srli_epi16(h, 8)));
    }
    view_row_c(out, row, c, 16 * c->blocks, dw);
}

static bool have_ssse3(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3");
}
#endif

/* Source row `row` interpolated across at the columns' positions. */
static void view_row(uint8_t *out, const uint8_t *row, const struct cols *c,
                     int dw)
{
#if defined(__x86_64__) || defined(__i386__)
    static atomic_int ssse3 = -1; /* racing threads store the same value */
    int has = atomic_load_explicit(&ssse3, memory_order_relaxed);
    if (has < 0) {
        has = have_ssse3();
        atomic_store_explicit(&ssse3, has, memory_order_relaxed);
    }
    if (has) {
        view_row_ssse3(out, row, c, dw);
        return;
    }
#endif
    view_row_c(out, row, c, 0, dw);
}

/*
 * One plane of media_view. Separable bilinear with 8-bit weights: each
 * source row in use is interpolated across once (a gather per pixel, or
 * pshufb 16 at a time) into a cache of two rows, and each output row
 * blends the two it lies between, 8 pixels a step. Magnifying, the source
 * rows are fewer than the output rows.
 */
static void view_plane(uint8_t *dst, int dls, int dw, int dh,
                       const uint8_t *src, int sls, int sw, int sh, int64_t x0,
                       int64_t y0, int64_t step)
{
    struct cols c;
    uint8_t *cache = xmalloc((size_t)dw * 2);
    uint8_t *h[2] = { cache, cache + dw };
    int held[2] = { -1, -1 }; /* source row in each cache slot */

    cols_init(&c, dw, sw, x0, step);
    for (int y = 0; y < dh; y++) {
        int64_t sy = y0 + y * step;
        int j = sy < 0 ? 0 : (int)(sy >> 16);
        int fy = sy < 0 ? 0 : (int)((sy >> 8) & 255);
        if (j >= sh - 1)
            j = sh - 1, fy = 0;
        const uint8_t *r[2];
        for (int k = 0; k < 2; k++) {
            int want = k && fy ? j + 1 : j;
            int slot = held[0] == want ? 0 : held[1] == want ? 1 : -1;
            if (slot < 0) {
                /* Evict the slot not holding row j (rows only go down). */
                slot = held[0] == j ? 1 : 0;
                view_row(h[slot], src + (size_t)want * sls, &c, dw);
                held[slot] = want;
            }
            r[k] = h[slot];
        }
        mix_row(dst + (size_t)y * dls, r[0], r[1], fy, dw);
    }
    cols_fini(&c);
    free(cache);
}

void media_view(const struct media_frame *dst, const struct media_frame *src,
                int64_t x0, int64_t y0, int64_t step)
{
    if (dst->width <= 0 || dst->height <= 0 || src->width <= 0 ||
        src->height <= 0 || step <= 0)
        return;
    if (step == 65536 && x0 % (2 << 16) == 0 && y0 % (2 << 16) == 0 &&
        x0 >= 0 && y0 >= 0) {
        struct media_frame win = media_frame_window(
            src, (int)(x0 >> 16), (int)(y0 >> 16), dst->width, dst->height);
        media_copy(dst, &win);
        return;
    }
    view_plane(dst->data[0], dst->linesize[0], dst->width, dst->height,
               src->data[0], src->linesize[0], src->width, src->height, x0, y0,
               step);
    int dcw = (dst->width + 1) / 2, dch = (dst->height + 1) / 2;
    int scw = (src->width + 1) / 2, sch = (src->height + 1) / 2;
    for (int p = 1; p < 3; p++)
        view_plane(dst->data[p], dst->linesize[p], dcw, dch, src->data[p],
                   src->linesize[p], scw, sch, x0 / 2, y0 / 2, step);
}
