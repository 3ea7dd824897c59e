/*
 * The constant tables of the task module: the seven models of docs/api.md
 * s.2, the output sizes of s.4 and the task status names.
 * Adding a model or a ratio is one line here.
 */
#include "task.h"

#include <string.h>

static const struct task_model models[] = {
    { "happyhorse-1.0-t2v", TASK_T2V },
    { "happyhorse-1.1-t2v", TASK_T2V },
    { "happyhorse-1.0-i2v", TASK_I2V },
    { "happyhorse-1.1-i2v", TASK_I2V },
    { "happyhorse-1.0-r2v", TASK_R2V },
    { "happyhorse-1.1-r2v", TASK_R2V },
    { "happyhorse-1.0-video-edit", TASK_EDIT },
};

static const char *const kind_names[] = {
    [TASK_T2V] = "t2v",
    [TASK_I2V] = "i2v",
    [TASK_R2V] = "r2v",
    [TASK_EDIT] = "video-edit",
};

static const char *const media_type_names[] = {
    [JOB_MEDIA_FIRST_FRAME] = "first_frame",
    [JOB_MEDIA_REFERENCE_IMAGE] = "reference_image",
    [JOB_MEDIA_VIDEO] = "video",
};

static const char *const status_names[] = {
    [TASK_PENDING] = "PENDING",     [TASK_RUNNING] = "RUNNING",
    [TASK_SUCCEEDED] = "SUCCEEDED", [TASK_FAILED] = "FAILED",
    [TASK_CANCELED] = "CANCELED",   [TASK_UNKNOWN] = "UNKNOWN",
};

/*
 * docs/api.md s.4, one row per ratio: the nominal aspect, then width and
 * height at 480P, 720P and 1080P. Sides are multiples of 16 (H.264
 * macroblocks), which is why the cells are close to, not exactly, the ratio.
 */
#define SIZE_MAP(X)                                   \
    X("16:9", 16, 9, 832, 480, 1280, 720, 1920, 1080) \
    X("9:16", 9, 16, 480, 832, 720, 1280, 1080, 1920) \
    X("1:1", 1, 1, 624, 624, 960, 960, 1440, 1440)    \
    X("4:3", 4, 3, 720, 544, 1088, 832, 1632, 1248)   \
    X("3:4", 3, 4, 544, 720, 832, 1088, 1248, 1632)   \
    X("5:4", 5, 4, 720, 576, 1072, 864, 1616, 1296)   \
    X("4:5", 4, 5, 576, 720, 864, 1072, 1296, 1616)   \
    X("21:9", 21, 9, 976, 416, 1456, 624, 2208, 944)  \
    X("9:21", 9, 21, 416, 976, 624, 1456, 944, 2208)

static const int tiers[] = { 480, 720, 1080 };

struct size_row {
    const char *ratio;
    int rw, rh;     /* nominal aspect, for the nearest-ratio search */
    int w[3], h[3]; /* per tier, in the order of tiers[] */
};

static const struct size_row sizes[] = {
#define SIZE_ROW_(r, rw, rh, w4, h4, w7, h7, w10, h10) \
    { r, rw, rh, { w4, w7, w10 }, { h4, h7, h10 } },
    SIZE_MAP(SIZE_ROW_)
#undef SIZE_ROW_
};

static const char *const ratio_names[] = {
#define SIZE_NAME_(r, ...) r,
    SIZE_MAP(SIZE_NAME_)
#undef SIZE_NAME_
};

_Static_assert(ARRAY_LEN(kind_names) == TASK_EDIT + 1, "a kind has no name");
_Static_assert(ARRAY_LEN(media_type_names) == JOB_MEDIA_VIDEO + 1,
               "a media type has no name");
_Static_assert(ARRAY_LEN(status_names) == TASK_UNKNOWN + 1,
               "a status has no name");

const struct task_model *task_model_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < ARRAY_LEN(models); i++)
        if (strcmp(models[i].name, name) == 0)
            return &models[i];
    return NULL;
}

const struct task_model *task_models(size_t *n)
{
    *n = ARRAY_LEN(models);
    return models;
}

const char *task_kind_name(enum task_kind kind)
{
    if ((unsigned)kind >= ARRAY_LEN(kind_names))
        return "unknown";
    return kind_names[kind];
}

const char *task_media_type_name(enum job_media_type type)
{
    if ((unsigned)type >= ARRAY_LEN(media_type_names))
        return "unknown";
    return media_type_names[type];
}

const char *task_status_name(enum task_status status)
{
    if ((unsigned)status >= ARRAY_LEN(status_names))
        return "UNKNOWN";
    return status_names[status];
}

int task_status_parse(const char *name, enum task_status *out)
{
    for (size_t i = 0; name && i < ARRAY_LEN(status_names); i++) {
        if (strcmp(status_names[i], name) == 0) {
            *out = (enum task_status)i;
            return 0;
        }
    }
    return ERR_INVALID_PARAMETER;
}

bool task_status_terminal(enum task_status status)
{
    return status == TASK_SUCCEEDED || status == TASK_FAILED ||
           status == TASK_CANCELED;
}

int task_size(int resolution, const char *ratio, int *w, int *h)
{
    size_t t;
    for (t = 0; t < ARRAY_LEN(tiers); t++)
        if (tiers[t] == resolution)
            break;
    if (t == ARRAY_LEN(tiers) || !ratio)
        return ERR_INVALID_PARAMETER;
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        if (strcmp(sizes[i].ratio, ratio) == 0) {
            *w = sizes[i].w[t];
            *h = sizes[i].h[t];
            return 0;
        }
    }
    return ERR_INVALID_PARAMETER;
}

/*
 * Distance between the aspects w:h and rw:rh as the larger of the two
 * cross-products over the smaller: the same order as |log(w/h) -
 * log(rw/rh)| without needing libm.
 */
static double aspect_distance(int w, int h, int rw, int rh)
{
    double a = (double)w * rh, b = (double)h * rw;
    return a > b ? a / b : b / a;
}

const char *task_nearest_ratio(int w, int h)
{
    if (w <= 0 || h <= 0)
        return sizes[0].ratio;
    size_t best = 0;
    double best_d = 0;
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        double d = aspect_distance(w, h, sizes[i].rw, sizes[i].rh);
        if (i == 0 || d < best_d) {
            best = i;
            best_d = d;
        }
    }
    return sizes[best].ratio;
}

const char *const *task_ratios(size_t *n)
{
    *n = ARRAY_LEN(ratio_names);
    return ratio_names;
}
