/*
 * Unit tests of the task module's tables: the models of docs/api.md s.2,
 * the output sizes of s.4 and the status names.
 */
#include "../../src/task/task.h"
#include "unit.h"

static void model_table(void)
{
    static const struct {
        const char *name;
        enum task_kind kind;
    } want[] = {
        { "happyhorse-1.0-t2v", TASK_T2V },
        { "happyhorse-1.1-t2v", TASK_T2V },
        { "happyhorse-1.0-i2v", TASK_I2V },
        { "happyhorse-1.1-i2v", TASK_I2V },
        { "happyhorse-1.0-r2v", TASK_R2V },
        { "happyhorse-1.1-r2v", TASK_R2V },
        { "happyhorse-1.0-video-edit", TASK_EDIT },
    };
    size_t n = 0;
    const struct task_model *models = task_models(&n);
    CHECK_INT(n, ARRAY_LEN(want));
    for (size_t i = 0; i < ARRAY_LEN(want) && i < n; i++) {
        CHECK_STR(models[i].name, want[i].name);
        const struct task_model *m = task_model_find(want[i].name);
        CHECK(m == &models[i]);
        CHECK(m && m->kind == want[i].kind);
    }
    CHECK(task_model_find("happyhorse-9") == NULL);
    CHECK(task_model_find("HappyHorse-1.0-T2V") == NULL);
    CHECK(task_model_find("happyhorse-1.0-t2v ") == NULL);
    CHECK(task_model_find("") == NULL);
    CHECK(task_model_find(NULL) == NULL);
}

static void names(void)
{
    CHECK_STR(task_kind_name(TASK_T2V), "t2v");
    CHECK_STR(task_kind_name(TASK_I2V), "i2v");
    CHECK_STR(task_kind_name(TASK_R2V), "r2v");
    CHECK_STR(task_kind_name(TASK_EDIT), "video-edit");
    CHECK_STR(task_media_type_name(JOB_MEDIA_FIRST_FRAME), "first_frame");
    CHECK_STR(task_media_type_name(JOB_MEDIA_REFERENCE_IMAGE),
              "reference_image");
    CHECK_STR(task_media_type_name(JOB_MEDIA_VIDEO), "video");
}

static void statuses(void)
{
    static const struct {
        enum task_status status;
        const char *name;
        bool terminal;
    } want[] = {
        { TASK_PENDING, "PENDING", false },
        { TASK_RUNNING, "RUNNING", false },
        { TASK_SUCCEEDED, "SUCCEEDED", true },
        { TASK_FAILED, "FAILED", true },
        { TASK_CANCELED, "CANCELED", true },
        { TASK_UNKNOWN, "UNKNOWN", false },
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        enum task_status s = TASK_UNKNOWN;
        CHECK_STR(task_status_name(want[i].status), want[i].name);
        CHECK_INT(task_status_parse(want[i].name, &s), 0);
        CHECK_INT(s, want[i].status);
        CHECK_INT(task_status_terminal(want[i].status), want[i].terminal);
    }
    enum task_status s = TASK_PENDING;
    CHECK_INT(task_status_parse("pending", &s), ERR_INVALID_PARAMETER);
    CHECK_INT(task_status_parse("", &s), ERR_INVALID_PARAMETER);
    CHECK_INT(task_status_parse(NULL, &s), ERR_INVALID_PARAMETER);
    CHECK_INT(s, TASK_PENDING);
}

/* docs/api.md s.4, written out again: all 27 cells. */
static void size_table(void)
{
    static const struct {
        const char *ratio;
        int w480, h480, w720, h720, w1080, h1080;
    } want[] = {
        { "16:9", 832, 480, 1280, 720, 1920, 1080 },
        { "9:16", 480, 832, 720, 1280, 1080, 1920 },
        { "1:1", 624, 624, 960, 960, 1440, 1440 },
        { "4:3", 720, 544, 1088, 832, 1632, 1248 },
        { "3:4", 544, 720, 832, 1088, 1248, 1632 },
        { "5:4", 720, 576, 1072, 864, 1616, 1296 },
        { "4:5", 576, 720, 864, 1072, 1296, 1616 },
        { "21:9", 976, 416, 1456, 624, 2208, 944 },
        { "9:21", 416, 976, 624, 1456, 944, 2208 },
    };
    size_t n = 0;
    const char *const *ratios = task_ratios(&n);
    CHECK_INT(n, ARRAY_LEN(want));
    int cells = 0;
    for (size_t i = 0; i < ARRAY_LEN(want) && i < n; i++) {
        int w = 0, h = 0;
        CHECK_STR(ratios[i], want[i].ratio);
        CHECK_INT(task_size(480, want[i].ratio, &w, &h), 0);
        CHECK(w == want[i].w480 && h == want[i].h480);
        CHECK_INT(task_size(720, want[i].ratio, &w, &h), 0);
        CHECK(w == want[i].w720 && h == want[i].h720);
        CHECK_INT(task_size(1080, want[i].ratio, &w, &h), 0);
        CHECK(w == want[i].w1080 && h == want[i].h1080);
        cells += 3;
        /* Every cell is even (yuv420p) and nearest to its own ratio. */
        CHECK(want[i].w480 % 2 == 0 && want[i].h480 % 2 == 0);
        CHECK_STR(task_nearest_ratio(want[i].w480, want[i].h480),
                  want[i].ratio);
        CHECK_STR(task_nearest_ratio(want[i].w720, want[i].h720),
                  want[i].ratio);
        CHECK_STR(task_nearest_ratio(want[i].w1080, want[i].h1080),
                  want[i].ratio);
    }
    CHECK_INT(cells, 27);
    int w = -1, h = -1;
    CHECK_INT(task_size(360, "16:9", &w, &h), ERR_INVALID_PARAMETER);
    CHECK_INT(task_size(720, "2:1", &w, &h), ERR_INVALID_PARAMETER);
    CHECK_INT(task_size(720, "", &w, &h), ERR_INVALID_PARAMETER);
    CHECK_INT(task_size(720, NULL, &w, &h), ERR_INVALID_PARAMETER);
    CHECK(w == -1 && h == -1);
}

static void nearest_ratio(void)
{
    static const struct {
        int w, h;
        const char *ratio;
    } cases[] = {
        { 1920, 1080, "16:9" }, { 1080, 1920, "9:16" }, { 1000, 1000, "1:1" },
        { 3000, 1000, "21:9" }, { 1000, 3000, "9:21" }, { 640, 480, "4:3" },
        { 480, 640, "3:4" },    { 1280, 1024, "5:4" },  { 1024, 1280, "4:5" },
        { 2560, 1080, "21:9" }, { 1, 1, "1:1" },        { 5000, 1, "21:9" },
        { 1, 5000, "9:21" },    { 1050, 1000, "1:1" },  { 1200, 1000, "5:4" },
        { 1999, 1000, "16:9" }, { 2200, 1000, "21:9" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *r = task_nearest_ratio(cases[i].w, cases[i].h);
        if (strcmp(r, cases[i].ratio) != 0)
            fprintf(stderr, "  %dx%d\n", cases[i].w, cases[i].h);
        CHECK_STR(r, cases[i].ratio);
    }
    /* No aspect at all: the default ratio, never a crash. */
    CHECK_STR(task_nearest_ratio(0, 0), "16:9");
    CHECK_STR(task_nearest_ratio(-5, 10), "16:9");
}

int main(void)
{
    unit_suite = "task_model";
    RUN(model_table);
    RUN(names);
    RUN(statuses);
    RUN(size_table);
    RUN(nearest_ratio);
    return UNIT_END();
}
