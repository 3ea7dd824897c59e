/*
 * Drawing on yuv420p frames: rectangles, blended rectangles, a 5x7 bitmap
 * font and the watermark. Integer math only, so every machine draws the
 * same bytes.
 */
#include "media.h"

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
