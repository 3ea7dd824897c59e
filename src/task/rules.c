/*
 * The rulebook: what each kind of model takes, the images paddock takes by
 * their magic bytes, and the limits on a measured input (docs/api.md s.2
 * and s.3.6). Data and pure functions only; the submit parse (job.c),
 * engine_run's check of fetched inputs and the CLI ask here, so there is
 * one copy of each rule.
 */
#include "task.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------- kinds */

/* What each kind of model takes (docs/api.md s.2). */
static const struct kind_rule {
    bool prompt_required;
    struct {
        unsigned min, max;
    } count[JOB_MEDIA_TYPES]; /* entries per job_media_type */
    const char *takes;        /* the same in words, for messages */
} kind_rules[] = {
    [TASK_T2V] = { true, { { 0, 0 } }, "no media" },
    [TASK_I2V] = { false,
                   { [JOB_MEDIA_FIRST_FRAME] = { 1, 1 } },
                   "exactly 1 first_frame" },
    [TASK_R2V] = { true,
                   { [JOB_MEDIA_REFERENCE_IMAGE] = { 1, 9 } },
                   "1 to 9 reference_image" },
    [TASK_EDIT] = { true,
                    { [JOB_MEDIA_VIDEO] = { 1, 1 },
                      [JOB_MEDIA_REFERENCE_IMAGE] = { 0, 5 } },
                    "exactly 1 video plus 0 to 5 reference_image" },
};

_Static_assert(ARRAY_LEN(kind_rules) == TASK_EDIT + 1, "a kind has no rule");

static const struct kind_rule *kind_rule(enum task_kind kind)
{
    return (unsigned)kind < ARRAY_LEN(kind_rules) ? &kind_rules[kind]
                                                  : &kind_rules[TASK_T2V];
}

void task_kind_media(enum task_kind kind, enum job_media_type type,
                     unsigned *min, unsigned *max)
{
    const struct kind_rule *r = kind_rule(kind);
    bool known = (unsigned)type < JOB_MEDIA_TYPES;
    *min = known ? r->count[type].min : 0;
    *max = known ? r->count[type].max : 0;
}

bool task_kind_needs_prompt(enum task_kind kind)
{
    return kind_rule(kind)->prompt_required;
}

const char *task_kind_takes(enum task_kind kind)
{
    return kind_rule(kind)->takes;
}

/* ------------------------------------------------------------- images */

/* Magic numbers of the images we take. */
static const struct image_magic {
    enum task_image type;
    const char *mime;
    struct {
        size_t off, len;
        const char *bytes;
    } part[2]; /* every part with len > 0 must match */
} image_magics[] = {
    { TASK_IMAGE_JPEG, "image/jpeg", { { 0, 3, "\xff\xd8\xff" } } },
    { TASK_IMAGE_PNG, "image/png", { { 0, 8, "\x89PNG\r\n\x1a\n" } } },
    { TASK_IMAGE_WEBP, "image/webp", { { 0, 4, "RIFF" }, { 8, 4, "WEBP" } } },
};

enum task_image task_image_sniff(const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; p && i < ARRAY_LEN(image_magics); i++) {
        const struct image_magic *m = &image_magics[i];
        bool ok = true;
        for (size_t k = 0; k < ARRAY_LEN(m->part) && m->part[k].len; k++)
            ok = ok && m->part[k].off + m->part[k].len <= n &&
                 memcmp(p + m->part[k].off, m->part[k].bytes, m->part[k].len) ==
                     0;
        if (ok)
            return m->type;
    }
    return TASK_IMAGE_NONE;
}

const char *task_image_mime(enum task_image type)
{
    for (size_t i = 0; i < ARRAY_LEN(image_magics); i++)
        if (image_magics[i].type == type)
            return image_magics[i].mime;
    return NULL;
}

/* ------------------------------------------------------- input limits */

/* docs/api.md s.3.6, one row per rule. */
static const struct media_rule {
    enum task_media_kind kind;
    int min_side;          /* the short side at least this */
    const char *side_text; /* how the rule reads */
} media_rules[] = {
    [TASK_RULE_IMAGE] = { TASK_MEDIA_IMAGE, 300, "each side must be at least" },
    [TASK_RULE_REFERENCE] = { TASK_MEDIA_IMAGE, 400,
                              "the short side must be at least" },
    [TASK_RULE_VIDEO] = { TASK_MEDIA_VIDEO, 360, "sides must be" },
};

/* Images: aspect within 1:2.5 and 2.5:1. Videos: 3 to 60 s, sides up to
 * 4096 px, more than 8 frames per second. */
#define ASPECT_NUM      5 /* 2.5 = 5 / 2 */
#define ASPECT_DEN      2
#define VIDEO_MAX_SIDE  4096
#define VIDEO_MIN_S     3
#define VIDEO_MAX_S     60
#define VIDEO_FPS_ABOVE 8

enum task_media_rule task_media_rule(enum task_kind kind,
                                     enum job_media_type type)
{
    if (type == JOB_MEDIA_VIDEO)
        return TASK_RULE_VIDEO;
    /* An r2v reference is the whole picture, so it needs more pixels than
     * a first frame or a video-edit's tile. */
    if (type == JOB_MEDIA_REFERENCE_IMAGE && kind == TASK_R2V)
        return TASK_RULE_REFERENCE;
    return TASK_RULE_IMAGE;
}

/* A duration for a message: two decimals, one when the second is 0
 * ("2.0", "2.5", "2.96"). */
static void seconds_str(double s, char out[32])
{
    snprintf(out, 32, "%.2f", s);
    size_t n = strlen(out);
    if (n > 3 && out[n - 1] == '0' && out[n - 3] == '.')
        out[n - 1] = '\0';
}

int task_media_check(const struct task_media_info *info,
                     enum task_media_rule rule, const char *name,
                     struct errmsg *err)
{
    if ((unsigned)rule >= ARRAY_LEN(media_rules))
        return errmsg_set(err, ERR_INTERNAL, "%s: unknown rule", name);
    const struct media_rule *r = &media_rules[rule];
    int w = info->width, h = info->height;
    int shorter = w < h ? w : h, longer = w < h ? h : w;
    if (info->kind != r->kind)
        return errmsg_set(err, ERR_UNSUPPORTED_FILE_FORMAT,
                          "%s is a %s, not a %s", name,
                          info->kind == TASK_MEDIA_IMAGE ? "picture" : "video",
                          r->kind == TASK_MEDIA_IMAGE ? "picture" : "video");
    if (r->kind == TASK_MEDIA_IMAGE) {
        if (shorter < r->min_side)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s image is %dx%d: %s %d px", name, w, h,
                              r->side_text, r->min_side);
        if ((int64_t)longer * ASPECT_DEN > (int64_t)shorter * ASPECT_NUM)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s image is %dx%d (aspect %.2f:1): the "
                              "aspect must be from 1:2.5 to 2.5:1",
                              name, w, h, (double)longer / shorter);
        return 0;
    }
    if (shorter < r->min_side || longer > VIDEO_MAX_SIDE)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s video is %dx%d: %s %d to %d px", name, w, h,
                          r->side_text, r->min_side, VIDEO_MAX_SIDE);
    if (!(info->duration_s >= VIDEO_MIN_S && info->duration_s <= VIDEO_MAX_S)) {
        char s[32];
        seconds_str(info->duration_s, s);
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s video is %s s long: it must be %d to %d s", name,
                          s, VIDEO_MIN_S, VIDEO_MAX_S);
    }
    if (!(info->fps > VIDEO_FPS_ABOVE))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s video is %.2f fps: it must be more than %d fps",
                          name, info->fps, VIDEO_FPS_ABOVE);
    return 0;
}
