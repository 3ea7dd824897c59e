/*
 * Unit tests of the rulebook (src/task/rules.c): what each kind takes, the
 * images known by their magic bytes, and the limits on a measured input
 * (docs/api.md s.2 and s.3.6). Cases as data; no file is read.
 */
#include "../../src/task/task.h"
#include "unit.h"

static void kinds_take(void)
{
    static const struct {
        enum task_kind kind;
        bool prompt;
        unsigned count[JOB_MEDIA_TYPES][2]; /* first_frame, ref, video */
        const char *takes;
    } want[] = {
        { TASK_T2V, true, { { 0, 0 }, { 0, 0 }, { 0, 0 } }, "no media" },
        { TASK_I2V,
          false,
          { { 1, 1 }, { 0, 0 }, { 0, 0 } },
          "exactly 1 first_frame" },
        { TASK_R2V,
          true,
          { { 0, 0 }, { 1, 9 }, { 0, 0 } },
          "1 to 9 reference_image" },
        { TASK_EDIT,
          true,
          { { 0, 0 }, { 0, 5 }, { 1, 1 } },
          "exactly 1 video plus 0 to 5 reference_image" },
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        CHECK(task_kind_needs_prompt(want[i].kind) == want[i].prompt);
        CHECK_STR(task_kind_takes(want[i].kind), want[i].takes);
        for (int t = 0; t < JOB_MEDIA_TYPES; t++) {
            unsigned min = 99, max = 99;
            task_kind_media(want[i].kind, (enum job_media_type)t, &min, &max);
            CHECK_INT(min, want[i].count[t][0]);
            CHECK_INT(max, want[i].count[t][1]);
        }
    }
    /* Out of range: nothing is taken, nothing is read past the table. */
    unsigned min = 99, max = 99;
    task_kind_media(TASK_R2V, (enum job_media_type)7, &min, &max);
    CHECK(min == 0 && max == 0);
}

static void kinds_use_params(void)
{
    static const struct {
        const char *name;
        bool t2v, i2v, r2v, edit;
    } want[] = {
        { "resolution", true, true, true, true },
        { "size", true, true, true, true },
        { "ratio", true, false, true, false },
        { "duration", true, true, true, false },
        { "watermark", true, true, true, true },
        { "seed", true, true, true, true },
        { "audio_setting", false, false, false, true },
        { "prompt_extend", false, false, false, false }, /* passed on */
        { "nonsense", false, false, false, false },
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        CHECK(task_kind_uses_param(TASK_T2V, want[i].name) == want[i].t2v);
        CHECK(task_kind_uses_param(TASK_I2V, want[i].name) == want[i].i2v);
        CHECK(task_kind_uses_param(TASK_R2V, want[i].name) == want[i].r2v);
        CHECK(task_kind_uses_param(TASK_EDIT, want[i].name) == want[i].edit);
    }
    CHECK(!task_kind_uses_param(TASK_T2V, NULL));

    size_t n = 0;
    const char *const *tiers = task_resolutions(&n);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(tiers[0], "480P");
        CHECK_STR(tiers[1], "720P");
        CHECK_STR(tiers[2], "1080P");
    }
    const char *const *audio = task_audio_settings(&n);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(audio[0], "auto");
        CHECK_STR(audio[1], "origin");
    }
}

static void image_magic(void)
{
    static const struct {
        const char *bytes;
        size_t n;
        enum task_image type;
    } cases[] = {
        { "\xff\xd8\xff\xe0", 4, TASK_IMAGE_JPEG },
        { "\xff\xd8\xff", 3, TASK_IMAGE_JPEG },
        { "\xff\xd8\xfe\xe0", 4, TASK_IMAGE_NONE },
        { "\xff\xd8", 2, TASK_IMAGE_NONE },
        { "\x89PNG\r\n\x1a\n....", 12, TASK_IMAGE_PNG },
        { "\x89PNG\r\n\x1a\n", 8, TASK_IMAGE_PNG },
        { "\x89PNG\r\n\x1a", 7, TASK_IMAGE_NONE },
        { "\x89PNG\n\r\x1a\n", 8, TASK_IMAGE_NONE },
        { "\x89PN", 3, TASK_IMAGE_NONE },
        { "RIFF\0\0\0\0WEBPVP8 ", 16, TASK_IMAGE_WEBP },
        { "RIFF\x10\0\0\0WEBP", 12, TASK_IMAGE_WEBP },
        { "RIFF\0\0\0\0WEB", 11, TASK_IMAGE_NONE },
        { "RIFF\0\0\0\0WAVEfmt ", 16, TASK_IMAGE_NONE },
        { "GIF89a......", 12, TASK_IMAGE_NONE },
        { "BM..........", 12, TASK_IMAGE_NONE },
        { "\0\0\0 ftypisom", 12, TASK_IMAGE_NONE },
        { "", 0, TASK_IMAGE_NONE },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        enum task_image got = task_image_sniff(cases[i].bytes, cases[i].n);
        if (got != cases[i].type)
            fprintf(stderr, "  case %zu\n", i);
        CHECK_INT(got, cases[i].type);
    }
    CHECK_INT(task_image_sniff(NULL, 0), TASK_IMAGE_NONE);
    CHECK_STR(task_image_mime(TASK_IMAGE_JPEG), "image/jpeg");
    CHECK_STR(task_image_mime(TASK_IMAGE_PNG), "image/png");
    CHECK_STR(task_image_mime(TASK_IMAGE_WEBP), "image/webp");
    CHECK(task_image_mime(TASK_IMAGE_NONE) == NULL);
}

static void rule_per_kind_and_type(void)
{
    CHECK_INT(task_media_rule(TASK_I2V, JOB_MEDIA_FIRST_FRAME),
              TASK_RULE_IMAGE);
    CHECK_INT(task_media_rule(TASK_R2V, JOB_MEDIA_REFERENCE_IMAGE),
              TASK_RULE_REFERENCE);
    /* A video-edit's references are tiles: the first-frame rule. */
    CHECK_INT(task_media_rule(TASK_EDIT, JOB_MEDIA_REFERENCE_IMAGE),
              TASK_RULE_IMAGE);
    CHECK_INT(task_media_rule(TASK_EDIT, JOB_MEDIA_VIDEO), TASK_RULE_VIDEO);
}

/* Shorthands for the table below: kind, size, then seconds and fps. */
#define IMG TASK_MEDIA_IMAGE
#define VID TASK_MEDIA_VIDEO

static void input_limits(void)
{
    static const struct {
        enum task_media_kind kind;
        int w, h;
        double seconds, fps;
        enum task_media_rule rule;
        int code;
        const char *text; /* the whole message, or NULL */
    } cases[] = {
        /* Images: sides, the r2v short side, the aspect. */
        { IMG, 200, 200, 0, 0, TASK_RULE_IMAGE, ERR_INVALID_PARAMETER,
          "media[0] image is 200x200: each side must be at least 300 px" },
        { IMG, 300, 300, 0, 0, TASK_RULE_IMAGE, 0, NULL },
        { IMG, 299, 300, 0, 0, TASK_RULE_IMAGE, ERR_INVALID_PARAMETER,
          "media[0] image is 299x300: each side must be at least 300 px" },
        { IMG, 500, 350, 0, 0, TASK_RULE_IMAGE, 0, NULL },
        { IMG, 500, 350, 0, 0, TASK_RULE_REFERENCE, ERR_INVALID_PARAMETER,
          "media[0] image is 500x350: the short side must be at least "
          "400 px" },
        { IMG, 400, 1000, 0, 0, TASK_RULE_REFERENCE, 0, NULL },
        { IMG, 900, 300, 0, 0, TASK_RULE_IMAGE, ERR_INVALID_PARAMETER,
          "media[0] image is 900x300 (aspect 3.00:1): the aspect must be "
          "from 1:2.5 to 2.5:1" },
        { IMG, 750, 300, 0, 0, TASK_RULE_IMAGE, 0, NULL },
        { IMG, 300, 750, 0, 0, TASK_RULE_IMAGE, 0, NULL },
        { IMG, 751, 300, 0, 0, TASK_RULE_IMAGE, ERR_INVALID_PARAMETER, NULL },
        { IMG, 300, 751, 0, 0, TASK_RULE_IMAGE, ERR_INVALID_PARAMETER, NULL },
        { IMG, 0, 0, 0, 0, TASK_RULE_IMAGE, ERR_INVALID_PARAMETER, NULL },
        { IMG, 640, 480, 0, 0, TASK_RULE_VIDEO, ERR_UNSUPPORTED_FILE_FORMAT,
          "media[0] is a picture, not a video" },
        /* Videos: sides, length, frame rate. */
        { VID, 640, 360, 4, 30, TASK_RULE_VIDEO, 0, NULL },
        { VID, 360, 640, 3, 8.01, TASK_RULE_VIDEO, 0, NULL },
        { VID, 4096, 2160, 60, 60, TASK_RULE_VIDEO, 0, NULL },
        { VID, 320, 240, 4, 30, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER,
          "media[0] video is 320x240: sides must be 360 to 4096 px" },
        { VID, 4097, 2160, 4, 30, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER,
          "media[0] video is 4097x2160: sides must be 360 to 4096 px" },
        { VID, 640, 360, 2, 30, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER,
          "media[0] video is 2.0 s long: it must be 3 to 60 s" },
        { VID, 640, 360, 2.96, 30, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER,
          "media[0] video is 2.96 s long: it must be 3 to 60 s" },
        { VID, 640, 360, 60.5, 30, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER,
          "media[0] video is 60.5 s long: it must be 3 to 60 s" },
        { VID, 640, 360, 0, 30, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER,
          "media[0] video is 0.0 s long: it must be 3 to 60 s" },
        { VID, 640, 360, 4, 8, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER,
          "media[0] video is 8.00 fps: it must be more than 8 fps" },
        { VID, 640, 360, 4, 0, TASK_RULE_VIDEO, ERR_INVALID_PARAMETER, NULL },
        { VID, 640, 360, 4, 30, TASK_RULE_IMAGE, ERR_UNSUPPORTED_FILE_FORMAT,
          "media[0] is a video, not a picture" },
        { VID, 640, 360, 4, 30, TASK_RULE_REFERENCE,
          ERR_UNSUPPORTED_FILE_FORMAT, NULL },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct task_media_info info = {
            .kind = cases[i].kind,
            .format = cases[i].kind == IMG ? "png" : "mov",
            .codec = cases[i].kind == IMG ? "png" : "h264",
            .width = cases[i].w,
            .height = cases[i].h,
            .duration_s = cases[i].seconds,
            .fps = cases[i].fps,
            .has_audio = cases[i].kind == VID,
        };
        struct errmsg err = { 0 };
        int rc = task_media_check(&info, cases[i].rule, "media[0]", &err);
        if (rc != cases[i].code ||
            (cases[i].text && strcmp(err.text, cases[i].text) != 0))
            fprintf(stderr, "  case %zu: %d '%s'\n", i, rc, err.text);
        CHECK_INT(rc, cases[i].code);
        if (cases[i].text)
            CHECK_STR(err.text, cases[i].text);
        if (rc < 0)
            CHECK_INT(err.code, rc);
    }
    /* The name starts the message, whatever it is. */
    struct task_media_info small = { .kind = IMG, .width = 10, .height = 10 };
    struct errmsg err = { 0 };
    CHECK_INT(task_media_check(&small, TASK_RULE_IMAGE, "media[7]", &err),
              ERR_INVALID_PARAMETER);
    CHECK(strncmp(err.text, "media[7] image", 14) == 0);
    CHECK_INT(task_media_check(&small, (enum task_media_rule)9, "x", &err),
              ERR_INTERNAL);
}

int main(void)
{
    unit_suite = "task_rules";
    RUN(kinds_take);
    RUN(kinds_use_params);
    RUN(image_magic);
    RUN(rule_per_kind_and_type);
    RUN(input_limits);
    return UNIT_END();
}
