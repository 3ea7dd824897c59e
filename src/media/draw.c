/*
 * Drawing on yuv420p frames: rectangles, blended rectangles, a 5x7 bitmap
 * font and the watermark. Integer math only, so every machine draws the
 * same bytes.
 */
#include "media.h"

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

static void blend_span(uint8_t *p, int n, int value, int alpha)
{
    int keep = 256 - alpha, add = value * alpha + 128;
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)((p[i] * keep + add) >> 8);
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

struct media_frame media_frame_window(const struct media_frame *f, int x,
                                      int y, int w, int h)
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

void media_copy_lut(const struct media_frame *dst,
                    const struct media_frame *src, const uint8_t lut[3][256])
{
    int w, h;
    common_size(dst, src, &w, &h);
    for (int p = 0; p < 3; p++) {
        int pw = p ? (w + 1) / 2 : w, ph = p ? (h + 1) / 2 : h;
        const uint8_t *t = lut[p];
        for (int y = 0; y < ph; y++) {
            uint8_t *d = dst->data[p] + (size_t)y * dst->linesize[p];
            const uint8_t *s = src->data[p] + (size_t)y * src->linesize[p];
            for (int x = 0; x < pw; x++)
                d[x] = t[s[x]];
        }
    }
}

void media_mix(const struct media_frame *dst, const struct media_frame *a,
               const struct media_frame *b, int alpha)
{
    int w, h;
    common_size(dst, a, &w, &h);
    common_size(&(struct media_frame){ .width = w, .height = h }, b, &w, &h);
    alpha = alpha < 0 ? 0 : alpha > 256 ? 256 : alpha;
    int keep = 256 - alpha;
    for (int p = 0; p < 3; p++) {
        int pw = p ? (w + 1) / 2 : w, ph = p ? (h + 1) / 2 : h;
        for (int y = 0; y < ph; y++) {
            uint8_t *d = dst->data[p] + (size_t)y * dst->linesize[p];
            const uint8_t *pa = a->data[p] + (size_t)y * a->linesize[p];
            const uint8_t *pb = b->data[p] + (size_t)y * b->linesize[p];
            for (int x = 0; x < pw; x++)
                d[x] = (uint8_t)((pa[x] * keep + pb[x] * alpha + 128) >> 8);
        }
    }
}

/*
 * One plane of media_view. Separable bilinear in 8-bit weights: each
 * output row blends two source rows into `tmp` (8.8 fixed point, a loop
 * the compiler vectorises), then each output pixel blends two entries of
 * `tmp` picked by the precomputed column table.
 */
static void view_plane(uint8_t *dst, int dls, int dw, int dh,
                       const uint8_t *src, int sls, int sw, int sh,
                       int64_t x0, int64_t y0, int64_t step)
{
    int *xi = xmalloc((size_t)dw * sizeof(*xi));
    uint16_t *xf = xmalloc((size_t)dw * sizeof(*xf));
    uint16_t *tmp = xmalloc(((size_t)sw + 1) * sizeof(*tmp));
    for (int x = 0; x < dw; x++) {
        int64_t sx = x0 + x * step;
        int64_t i = sx >> 16; /* x0 >= 0 by contract; clamped anyway */
        int f = (int)((sx >> 8) & 255);
        if (sx < 0)
            i = 0, f = 0;
        if (i >= sw - 1)
            i = sw - 1, f = 0;
        xi[x] = (int)i;
        xf[x] = (uint16_t)f;
    }
    int lo = xi[0], hi = xi[dw - 1] + 1 < sw ? xi[dw - 1] + 1 : sw - 1;
    for (int y = 0; y < dh; y++) {
        int64_t sy = y0 + y * step;
        int64_t j = sy >> 16;
        int fy = (int)((sy >> 8) & 255);
        if (sy < 0)
            j = 0, fy = 0;
        if (j >= sh - 1)
            j = sh - 1, fy = 0;
        const uint8_t *r0 = src + (size_t)j * sls;
        const uint8_t *r1 = fy ? r0 + sls : r0;
        int ky = 256 - fy;
        for (int i = lo; i <= hi; i++)
            tmp[i] = (uint16_t)(r0[i] * ky + r1[i] * fy);
        uint8_t *d = dst + (size_t)y * dls;
        for (int x = 0; x < dw; x++) {
            int i = xi[x], f = xf[x];
            int v = tmp[i] * (256 - f) + (f ? tmp[i + 1] * f : 0);
            d[x] = (uint8_t)((v + 32768) >> 16);
        }
    }
    free(xi);
    free(xf);
    free(tmp);
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
