/*
 * Unit tests of task_job_parse() (docs/api.md s.2, s.3 and s.9) and of the
 * job's store JSON. Cases are data: one table of bad bodies with the error
 * each must get, one of good bodies with the job each must give.
 */
#include "../../src/task/task.h"
#include "unit.h"

#include <stdlib.h>

#define SEED 777 /* the random_seed every table case passes */

/* ------------------------------------------------------- body pieces */

#define T2V    "\"model\":\"happyhorse-1.0-t2v\""
#define T2V11  "\"model\":\"happyhorse-1.1-t2v\""
#define I2V    "\"model\":\"happyhorse-1.0-i2v\""
#define I2V11  "\"model\":\"happyhorse-1.1-i2v\""
#define R2V    "\"model\":\"happyhorse-1.0-r2v\""
#define R2V11  "\"model\":\"happyhorse-1.1-r2v\""
#define EDIT   "\"model\":\"happyhorse-1.0-video-edit\""
#define PROMPT "\"prompt\":\"a horse\""
#define IMG    "https://example.com/a.png"
#define IMG2   "https://example.com/b.png"
#define IMG3   "https://example.com/c.png"
#define VID    "https://example.com/v.mp4"
/* paddock-upload:// URLs (the upload extension): as stored, and as a
 * client may spell them. */
#define UP       "paddock-upload://0190f5b2-7c1e-4d2a-9b3c-5e6f7a8b9c0d"
#define UP_UPPER "PADDOCK-UPLOAD://0190F5B2-7C1E-4D2A-9B3C-5E6F7A8B9C0D"
#define UP2      "paddock-upload://11111111-2222-4333-8444-555555555555"
/* oss:// URLs (what DashScope SDKs send for a file they uploaded). */
#define OSS       "oss://paddock-instant/cfg_1/0190f5b2/frame.png"
#define OSS_UPPER "OSS://paddock-instant/cfg_1/0190f5b2/frame.png"
#define OSS_VID   "oss://paddock-instant/cfg_1/0190f5b2/clip \u00e9.mp4"

#define FF(u)    "{\"type\":\"first_frame\",\"url\":\"" u "\"}"
#define REF(u)   "{\"type\":\"reference_image\",\"url\":\"" u "\"}"
#define VIDEO(u) "{\"type\":\"video\",\"url\":\"" u "\"}"

#define T2V_PARAMS(p) "{" T2V ",\"input\":{" PROMPT "},\"parameters\":{" p "}}"
#define T2V_INPUT(i)  "{" T2V ",\"input\":{" i "}}"
#define I2V_INPUT(i)  "{" I2V ",\"input\":{" i "}}"
#define I2V_MEDIA(m)  I2V_INPUT("\"media\":[" m "]")
#define R2V_INPUT(i)  "{" R2V ",\"input\":{" PROMPT "," i "}}"
#define R2V_MEDIA(m)  R2V_INPUT("\"media\":[" m "]")
#define EDIT_INPUT(i) "{" EDIT ",\"input\":{" PROMPT "," i "}}"
#define EDIT_MEDIA(m) EDIT_INPUT("\"media\":[" m "]")
#define EDIT_PARAMS(p)              \
    "{" EDIT ",\"input\":{" PROMPT  \
    ",\"media\":[" VIDEO(VID) "]}," \
                              "\"parameters\":{" p "}}"
#define I2V_PARAMS(p) \
    "{" I2V ",\"input\":{\"media\":[" FF(IMG) "]},\"parameters\":{" p "}}"

/* Tiny real image headers, base64 (bare, no data: prefix). */
#define PNG_B64                                                           \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwA" \
    "ChwGA60e6kgAAAABJRU5ErkJggg=="
#define JPEG_B64 "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q=="
#define WEBP_B64 "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="
#define GIF_B64  "R0lGODlhAQABAA=="

/* ----------------------------------------------- generated bodies */

static char *body_with(const char *head, const char *fill, size_t times,
                       const char *tail)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, head);
    for (size_t i = 0; i < times; i++)
        buf_puts(&b, fill);
    buf_puts(&b, tail);
    return buf_take(&b);
}

static char *gen_long_model(void)
{
    return body_with("{\"model\":\"happyhorse-", "x", 200,
                     "\",\"input\":{" PROMPT "}}");
}

static char *gen_long_model_cjk(void)
{
    return body_with("{\"model\":\"", "\xe9\xa9\xac", 300,
                     "\",\"input\":{" PROMPT "}}");
}

static char *gen_media_10(void)
{
    return body_with("{" R2V ",\"input\":{" PROMPT ",\"media\":[" REF(IMG),
                     "," REF(IMG), 9, "]}}");
}

static char *gen_refs_10(void)
{
    return body_with("{" R2V ",\"input\":{" PROMPT ",\"reference_urls\":[\"" IMG
                     "\"",
                     ",\"" IMG "\"", 9, "]}}");
}

static char *gen_long_url(void)
{
    return body_with(I2V_INPUT("\"media\":[{\"type\":\"first_frame\","
                               "\"url\":\"https://example.com/"),
                     "a", LIMIT_URL_BYTES, "\"}]}}");
}

static char *gen_url_at_limit(void)
{
    /* "https://example.com/" is 20 bytes. */
    return body_with("{" I2V ",\"input\":{\"media\":[{\"type\":\"first_frame\","
                     "\"url\":\"https://example.com/",
                     "a", LIMIT_URL_BYTES - 20, "\"}]}}");
}

/* 20 MB is 6990506 full base64 quads (3 bytes each) and 2 bytes more. */
#define QUADS_20MB ((20u << 20) / 3)

static char *gen_data_uri_over(void)
{
    return body_with("{" I2V ",\"input\":{\"media\":[{\"type\":\"first_frame\","
                     "\"url\":\"data:image/png;base64,",
                     "AAAA", QUADS_20MB + 1, "\"}]}}");
}

static char *gen_data_uri_at_limit(void)
{
    return body_with("{" I2V ",\"input\":{\"media\":[{\"type\":\"first_frame\","
                     "\"url\":\"data:image/png;base64,",
                     "AAAA", QUADS_20MB, "AAA=\"}]}}");
}

static char *gen_prompt_ascii(void)
{
    return body_with("{" T2V ",\"input\":{\"prompt\":\"", "a", 6000, "\"}}");
}

static char *gen_prompt_cjk(void)
{
    /* One ideograph among ASCII halves the limit to 2500 code points. */
    return body_with("{" T2V ",\"input\":{\"prompt\":\"\xe4\xb8\xad", "b", 3000,
                     "\"}}");
}

/* --------------------------------------------------------- bad bodies */

struct bad_row {
    const char *name;
    const char *body; /* NULL: made by `make` */
    size_t len;       /* 0: strlen(body) */
    char *(*make)(void);
    int status;
    const char *code;
    const char *fragment; /* must appear in the message */
};

#define INVALID     400, "InvalidParameter"
#define EMPTY_MODEL 400, "BadRequest.EmptyModel"
#define EMPTY_INPUT 400, "BadRequest.EmptyInput"
#define NO_MODEL    404, "ModelNotFound"

#define BAD(name, body, ...)             \
    {                                    \
        name, body, 0, NULL, __VA_ARGS__ \
    }
#define GEN(name, fn, ...)             \
    {                                  \
        name, NULL, 0, fn, __VA_ARGS__ \
    }

#define URL_MSG \
    "must be an http(s) URL or a data:image/(jpeg|png|webp);base64 URI"

static const struct bad_row bad_rows[] = {
    /* The body as JSON. */
    BAD("truncated_json", "{\"model\": \"happyhorse-1.0-t2v\", \"input\": {",
        INVALID, "request body is not valid JSON at byte"),
    BAD("offset_named", "{\"a\":1,}", INVALID, "at byte 8:"),
    BAD("empty_body", "", INVALID, "request body is empty"),
    BAD("garbage_after_object", "{} x", INVALID, "not valid JSON at byte"),
    BAD("null_root", "null", INVALID, "request body must be a JSON object"),
    BAD("array_root", "[1, 2]", INVALID, "must be a JSON object, got an array"),
    BAD("string_root", "\"x\"", INVALID, "must be a JSON object"),
    BAD("number_root", "42", INVALID, "must be a JSON object, got 42"),
    BAD("invalid_utf8_prompt",
        T2V_INPUT("\"prompt\":\"a\xff"
                  "b\""),
        INVALID, "not valid UTF-8"),
    BAD("overlong_utf8_prompt", T2V_INPUT("\"prompt\":\"a\xc0\xaf\""), INVALID,
        "not valid UTF-8"),
    BAD("surrogate_utf8_prompt", T2V_INPUT("\"prompt\":\"\xed\xa0\x80\""),
        INVALID, "not valid UTF-8"),
    BAD("nul_escape_prompt", T2V_INPUT("\"prompt\":\"a\\u0000b\""), INVALID,
        "\\u0000 is not allowed in strings"),
    { "raw_nul_byte", "{\"model\":\"a\0b\"}", 16, NULL, INVALID,
      "not valid JSON at byte" },
    BAD("lone_surrogate_escape", T2V_INPUT("\"prompt\":\"\\ud800\""), INVALID,
        "not valid JSON"),

    /* model */
    BAD("model_missing", "{\"input\":{" PROMPT "}}", EMPTY_MODEL,
        "model is required"),
    BAD("model_null", "{\"model\":null,\"input\":{" PROMPT "}}", EMPTY_MODEL,
        "model is required"),
    BAD("model_empty", "{\"model\":\"\",\"input\":{" PROMPT "}}", EMPTY_MODEL,
        "model is required"),
    BAD("model_number", "{\"model\":5,\"input\":{" PROMPT "}}", INVALID,
        "model must be a string, got 5"),
    BAD("model_array", "{\"model\":[\"x\"],\"input\":{" PROMPT "}}", INVALID,
        "model must be a string, got an array"),
    BAD("model_unknown", "{\"model\":\"happyhorse-9\",\"input\":{" PROMPT "}}",
        NO_MODEL, "Model not exist: happyhorse-9"),
    BAD("model_unknown_lists_known",
        "{\"model\":\"wan2.2-t2v\",\"input\":{" PROMPT "}}", NO_MODEL,
        "happyhorse-1.1-r2v, happyhorse-1.0-video-edit"),
    BAD("model_wrong_case",
        "{\"model\":\"HappyHorse-1.0-T2V\",\"input\":{" PROMPT "}}", NO_MODEL,
        "HappyHorse-1.0-T2V"),
    GEN("model_too_long", gen_long_model, NO_MODEL, "xxx..."),
    GEN("model_too_long_cjk", gen_long_model_cjk, NO_MODEL, "Model not exist"),

    /* input, parameters */
    BAD("input_missing", "{" T2V "}", EMPTY_INPUT, "input is required"),
    BAD("input_null", "{" T2V ",\"input\":null}", EMPTY_INPUT,
        "input is required"),
    BAD("input_string", "{" T2V ",\"input\":\"\"}", INVALID,
        "input must be an object"),
    BAD("input_array", "{" T2V ",\"input\":[]}", INVALID,
        "input must be an object, got an array"),
    BAD("parameters_string",
        "{" T2V ",\"input\":{" PROMPT "},"
        "\"parameters\":\"720P\"}",
        INVALID, "parameters must be an object"),
    BAD("parameters_array",
        "{" T2V ",\"input\":{" PROMPT "},"
        "\"parameters\":[]}",
        INVALID, "parameters must be an object"),

    /* input.prompt */
    BAD("t2v_prompt_missing", T2V_INPUT(""), INVALID,
        "input.prompt is required by happyhorse-1.0-t2v"),
    BAD("t2v_prompt_empty", T2V_INPUT("\"prompt\":\"\""), INVALID,
        "input.prompt is required"),
    BAD("prompt_number", T2V_INPUT("\"prompt\":5"), INVALID,
        "input.prompt must be a string, got 5"),
    BAD("prompt_object", T2V_INPUT("\"prompt\":{}"), INVALID,
        "input.prompt must be a string"),
    BAD("r2v_prompt_missing", "{" R2V ",\"input\":{\"media\":[" REF(IMG) "]}}",
        INVALID, "input.prompt is required by happyhorse-1.0-r2v"),
    BAD("edit_prompt_missing",
        "{" EDIT ",\"input\":{\"media\":[" VIDEO(VID) "]}}", INVALID,
        "input.prompt is required by happyhorse-1.0-video-edit"),
    BAD("i2v_prompt_number",
        I2V_INPUT("\"prompt\":true,\"img_url\":\"" IMG "\""), INVALID,
        "input.prompt must be a string, got true"),

    /* input.media: shape */
    BAD("t2v_takes_no_media", T2V_INPUT(PROMPT ",\"media\":[" FF(IMG) "]"),
        INVALID, "not accepted by happyhorse-1.0-t2v, which takes no media"),
    BAD("media_string", I2V_INPUT("\"media\":\"" IMG "\""), INVALID,
        "input.media must be an array"),
    BAD("media_entry_number", I2V_MEDIA("5"), INVALID,
        "input.media[0] must be an object"),
    BAD("media_type_unknown",
        I2V_MEDIA("{\"type\":\"image\",\"url\":\"" IMG "\"}"), INVALID,
        "input.media[0].type must be one of first_frame, reference_image, "
        "video, got \"image\""),
    BAD("media_type_missing", I2V_MEDIA("{\"url\":\"" IMG "\"}"), INVALID,
        "input.media[0].type must be one of"),
    BAD("media_type_number", I2V_MEDIA("{\"type\":1,\"url\":\"" IMG "\"}"),
        INVALID, "input.media[0].type must be one of"),
    BAD("media_type_index_named",
        R2V_MEDIA(REF(IMG) "," REF(IMG2) ",{\"type\":\"ref\",\"url\":\"" IMG
                                         "\"}"),
        INVALID, "input.media[2].type must be one of"),
    BAD("media_url_missing", I2V_MEDIA("{\"type\":\"first_frame\"}"), INVALID,
        "input.media[0].url must be a string"),
    BAD("media_url_number", I2V_MEDIA("{\"type\":\"first_frame\",\"url\":7}"),
        INVALID, "input.media[0].url must be a string, got 7"),
    GEN("media_more_than_9", gen_media_10, INVALID,
        "input.media has 10 entries; at most 9"),

    /* input.media: counts and types per model */
    BAD("i2v_two_first_frames", I2V_MEDIA(FF(IMG) "," FF(IMG2)), INVALID,
        "happyhorse-1.0-i2v needs exactly 1 first_frame in input.media, "
        "got 2"),
    BAD("i2v_no_media", I2V_INPUT(PROMPT), INVALID,
        "happyhorse-1.0-i2v needs exactly 1 first_frame in input.media, "
        "got 0 (or send input.img_url)"),
    BAD("i2v_reference_image", I2V_MEDIA(REF(IMG)), INVALID,
        "input.media[0].type: reference_image is not accepted by "
        "happyhorse-1.0-i2v, which takes exactly 1 first_frame"),
    BAD("i2v_11_video", "{" I2V11 ",\"input\":{\"media\":[" VIDEO(VID) "]}}",
        INVALID, "video is not accepted by happyhorse-1.1-i2v"),
    BAD("r2v_no_media", "{" R2V ",\"input\":{" PROMPT "}}", INVALID,
        "happyhorse-1.0-r2v needs 1 to 9 reference_image in input.media, "
        "got 0"),
    BAD("r2v_video", R2V_MEDIA(REF(IMG) "," VIDEO(VID)), INVALID,
        "input.media[1].type: video is not accepted by happyhorse-1.0-r2v, "
        "which takes 1 to 9 reference_image"),
    BAD("r2v_first_frame", R2V_MEDIA(FF(IMG)), INVALID,
        "first_frame is not accepted by happyhorse-1.0-r2v"),
    BAD("edit_no_video", EDIT_MEDIA(REF(IMG)), INVALID,
        "happyhorse-1.0-video-edit needs exactly 1 video in input.media, "
        "got 0"),
    BAD("edit_two_videos", EDIT_MEDIA(VIDEO(VID) "," VIDEO(VID)), INVALID,
        "needs exactly 1 video in input.media, got 2"),
    BAD("edit_six_references",
        EDIT_MEDIA(VIDEO(VID) "," REF(IMG) "," REF(IMG) "," REF(IMG) "," REF(
            IMG) "," REF(IMG) "," REF(IMG)),
        INVALID,
        "happyhorse-1.0-video-edit takes at most 5 reference_image in "
        "input.media, got 6"),
    BAD("edit_first_frame", EDIT_MEDIA(VIDEO(VID) "," FF(IMG)), INVALID,
        "first_frame is not accepted by happyhorse-1.0-video-edit, which "
        "takes exactly 1 video plus 0 to 5 reference_image"),

    /* media URLs */
    BAD("url_ftp", I2V_MEDIA(FF("ftp://example.com/a.png")), INVALID,
        "input.media[0].url " URL_MSG),
    BAD("url_no_host", I2V_MEDIA(FF("http://")), INVALID,
        "no host after the scheme"),
    BAD("url_only_path", I2V_MEDIA(FF("https:///a.png")), INVALID,
        "no host after the scheme"),
    BAD("url_userinfo_no_host", I2V_MEDIA(FF("http://user@/a.png")), INVALID,
        "no host"),
    BAD("url_space", I2V_MEDIA(FF("https://example.com/a b.png")), INVALID,
        "whitespace or a control character"),
    BAD("url_tab", I2V_MEDIA(FF("https://example.com/a\\tb.png")), INVALID,
        "whitespace or a control character"),
    BAD("url_relative", I2V_MEDIA(FF("/a.png")), INVALID,
        "input.media[0].url " URL_MSG),
    BAD("url_empty", I2V_MEDIA(FF("")), INVALID, "input.media[0].url must be"),
    BAD("url_javascript", I2V_MEDIA(FF("javascript:alert(1)")), INVALID,
        URL_MSG),
    BAD("url_video_ftp", EDIT_MEDIA(VIDEO("ftp://example.com/v.mp4")), INVALID,
        "input.media[0].url must be an http(s) URL"),
    GEN("url_too_long", gen_long_url, INVALID, "longer than 8192 bytes"),
    BAD("data_uri_video", EDIT_MEDIA(VIDEO("data:video/mp4;base64,AAAA")),
        INVALID, "data URIs are accepted for images only"),
    BAD("data_uri_image_as_video",
        EDIT_MEDIA(VIDEO("data:image/png;base64," PNG_B64)), INVALID,
        "input.media[0].url: data URIs are accepted for images only"),
    BAD("data_uri_bad_alphabet", I2V_MEDIA(FF("data:image/png;base64,!!!!")),
        INVALID, "character outside A-Z a-z 0-9 + /"),
    BAD("data_uri_misplaced_padding",
        I2V_MEDIA(FF("data:image/png;base64,ab=c")), INVALID,
        "misplaced padding"),
    BAD("data_uri_unpadded", I2V_MEDIA(FF("data:image/png;base64,abc")),
        INVALID, "not padded to a multiple of 4"),
    BAD("data_uri_empty_payload", I2V_MEDIA(FF("data:image/png;base64,")),
        INVALID, "the base64 payload is empty"),
    BAD("data_uri_gif", I2V_MEDIA(FF("data:image/gif;base64," GIF_B64)),
        INVALID, "not image/jpeg, image/png or image/webp"),
    BAD("data_uri_not_base64", I2V_MEDIA(FF("data:image/png,rawbytes")),
        INVALID, "not image/jpeg, image/png or image/webp with ;base64"),
    BAD("data_uri_reference_bad", R2V_MEDIA(REF("data:image/jpeg;base64,*")),
        INVALID, "input.media[0].url " URL_MSG),
    GEN("data_uri_over_20mb", gen_data_uri_over, INVALID,
        "the image is over 20 MB"),

    /* paddock-upload:// (the upload extension): the syntax only */
    BAD("upload_not_uuid", EDIT_MEDIA(VIDEO("paddock-upload://nope")), INVALID,
        "input.media[0].url: a paddock-upload:// URL is the scheme and the "
        "upload_id POST /api/v1/uploads answered (a uuid), got "
        "\"paddock-upload://nope\""),
    BAD("upload_empty", EDIT_MEDIA(VIDEO("paddock-upload://")), INVALID,
        "input.media[0].url: a paddock-upload:// URL is the scheme"),
    BAD("upload_trailing", EDIT_MEDIA(VIDEO(UP "/x")), INVALID,
        "a paddock-upload:// URL is the scheme and the upload_id"),
    BAD("upload_uuid_no_dashes",
        EDIT_MEDIA(VIDEO("paddock-upload://0190f5b27c1e4d2a9b3c5e6f7a8b9c0d"
                         "abcd")),
        INVALID, "a paddock-upload:// URL is the scheme"),
    BAD("upload_one_slash",
        EDIT_MEDIA(VIDEO("paddock-upload:/0190f5b2-7c1e-4d2a-9b3c-"
                         "5e6f7a8b9c0d")),
        INVALID,
        "input.media[0].url must be an http(s) URL or a paddock-upload:// "
        "URL"),
    BAD("upload_video_url_alias",
        EDIT_INPUT("\"video_url\":\"paddock-upload://123\""), INVALID,
        "input.video_url: a paddock-upload:// URL is the scheme"),
    BAD("upload_img_url_alias", I2V_INPUT("\"img_url\":\"paddock-upload://x\""),
        INVALID, "input.img_url: a paddock-upload:// URL is the scheme"),
    BAD("upload_reference_urls",
        R2V_INPUT("\"reference_urls\":[\"" UP "\",\"paddock-upload://y\"]"),
        INVALID, "input.reference_urls[1]: a paddock-upload:// URL"),
    /* oss:// (DashScope SDKs' own uploads): the syntax only */
    BAD("oss_empty", I2V_MEDIA(FF("oss://")), INVALID,
        "input.media[0].url: an oss:// URL is the scheme and the object key "
        "a file was uploaded under (1 to 1023 bytes of UTF-8 without control "
        "characters), got \"oss://\""),
    BAD("oss_control", EDIT_INPUT("\"video_url\":\"oss://a\\tb\""), INVALID,
        "input.video_url: an oss:// URL is the scheme and the object key"),
    BAD("oss_reference_urls",
        R2V_INPUT("\"reference_urls\":[\"" OSS "\",\"oss://x\\u007f\"]"),
        INVALID, "input.reference_urls[1]: an oss:// URL"),
    BAD("upload_on_t2v", T2V_INPUT(PROMPT ",\"media\":[" VIDEO(UP) "]"),
        INVALID,
        "input.media[0].type: video is not accepted by happyhorse-1.0-t2v"),

    /* aliases */
    BAD("img_url_number", I2V_INPUT("\"img_url\":5"), INVALID,
        "input.img_url must be a string, got 5"),
    BAD("img_url_not_url_or_base64", I2V_INPUT("\"img_url\":\"not a url\""),
        INVALID,
        "input.img_url must be an http(s) URL, a "
        "data:image/(jpeg|png|webp);base64 URI or the bare base64 of a JPEG, "
        "PNG or WEBP image (neither a URL nor valid base64)"),
    BAD("img_url_base64_not_image",
        I2V_INPUT("\"img_url\":\"aGVsbG8gd29ybGQh\""), INVALID,
        "the base64 data is not a JPEG, PNG or WEBP image"),
    BAD("img_url_base64_gif", I2V_INPUT("\"img_url\":\"" GIF_B64 "\""), INVALID,
        "not a JPEG, PNG or WEBP image"),
    BAD("first_frame_url_bad", I2V_INPUT("\"first_frame_url\":\"ftp://x/a\""),
        INVALID, "input.first_frame_url must be an http(s) URL"),
    BAD("img_url_on_t2v", T2V_INPUT(PROMPT ",\"img_url\":\"" IMG "\""), INVALID,
        "input.img_url: first_frame is not accepted by happyhorse-1.0-t2v, "
        "which takes no media"),
    BAD("reference_url_on_i2v",
        I2V_INPUT("\"img_url\":\"" IMG "\",\"reference_url\":\"" IMG "\""),
        INVALID,
        "input.reference_url: reference_image is not accepted by "
        "happyhorse-1.0-i2v"),
    BAD("reference_urls_string", R2V_INPUT("\"reference_urls\":\"" IMG "\""),
        INVALID, "input.reference_urls must be an array of URL strings"),
    BAD("reference_urls_number_entry",
        R2V_INPUT("\"reference_urls\":[\"" IMG "\",5]"), INVALID,
        "input.reference_urls[1] must be a string, got 5"),
    BAD("reference_urls_bad_url",
        R2V_INPUT("\"reference_urls\":[\"" IMG "\",\"ftp://x/b.png\"]"),
        INVALID, "input.reference_urls[1] " URL_MSG),
    GEN("reference_urls_10", gen_refs_10, INVALID,
        "input.reference_urls has 10 entries; at most 9"),
    BAD("reference_url_number", R2V_INPUT("\"reference_url\":[]"), INVALID,
        "input.reference_url must be a string, got an array"),
    BAD("video_url_on_r2v", R2V_INPUT("\"video_url\":\"" VID "\""), INVALID,
        "input.video_url: video is not accepted by happyhorse-1.0-r2v"),
    BAD("video_url_data_uri",
        EDIT_INPUT("\"video_url\":\"data:image/png;base64," PNG_B64 "\""),
        INVALID, "input.video_url: data URIs are accepted for images only"),
    BAD("video_url_bare_base64", EDIT_INPUT("\"video_url\":\"" PNG_B64 "\""),
        INVALID, "input.video_url must be an http(s) URL"),
    BAD("edit_aliases_six_references",
        EDIT_INPUT("\"video_url\":\"" VID "\",\"reference_urls\":[\"" IMG
                   "\",\"" IMG "\",\"" IMG "\",\"" IMG "\",\"" IMG "\",\"" IMG
                   "\"]"),
        INVALID,
        "takes at most 5 reference_image in input.media or its aliases, "
        "got 6"),
    BAD("edit_alias_no_video", EDIT_INPUT("\"reference_url\":\"" IMG "\""),
        INVALID, "needs exactly 1 video in input.media or its aliases, got 0"),

    /* parameters.size */
    BAD("size_x_separator", T2V_PARAMS("\"size\":\"1280x720\""), INVALID,
        "parameters.size must be one of 832*480, 480*832,"),
    BAD("size_not_in_table", T2V_PARAMS("\"size\":\"1281*720\""), INVALID,
        "1920*1080, 1080*1920, 1440*1440"),
    BAD("size_number", T2V_PARAMS("\"size\":1280"), INVALID,
        "parameters.size must be one of"),
    BAD("size_on_i2v", I2V_PARAMS("\"size\":\"1*1\""), INVALID,
        "944*2208, got \"1*1\""),

    /* parameters.resolution, ratio */
    BAD("resolution_lower_case", T2V_PARAMS("\"resolution\":\"720p\""), INVALID,
        "parameters.resolution must be one of 480P, 720P, 1080P, got "
        "\"720p\""),
    BAD("resolution_number", T2V_PARAMS("\"resolution\":720"), INVALID,
        "parameters.resolution must be one of 480P, 720P, 1080P, got 720"),
    BAD("resolution_4k", T2V_PARAMS("\"resolution\":\"4K\""), INVALID,
        "parameters.resolution"),
    BAD("ratio_unknown", T2V_PARAMS("\"ratio\":\"16:10\""), INVALID,
        "parameters.ratio must be one of 16:9, 9:16, 1:1, 4:3, 3:4, 5:4, "
        "4:5, 21:9, 9:21, got \"16:10\""),
    BAD("ratio_number", T2V_PARAMS("\"ratio\":1.5"), INVALID,
        "parameters.ratio must be one of"),
    BAD("r2v_ratio_unknown",
        "{" R2V ",\"input\":{" PROMPT
        ",\"media\":[" REF(IMG) "]},"
                                "\"parameters\":{\"ratio\":\"2:1\"}}",
        INVALID, "parameters.ratio"),

    /* parameters.duration */
    BAD("duration_2", T2V_PARAMS("\"duration\":2"), INVALID,
        "parameters.duration must be an integer from 3 to 15, got 2"),
    BAD("duration_16", T2V_PARAMS("\"duration\":16"), INVALID,
        "parameters.duration must be an integer from 3 to 15, got 16"),
    BAD("duration_real", T2V_PARAMS("\"duration\":3.5"), INVALID,
        "parameters.duration must be an integer from 3 to 15, got 3.5"),
    BAD("duration_real_whole", T2V_PARAMS("\"duration\":5.0"), INVALID,
        "parameters.duration must be an integer from 3 to 15, got 5.0"),
    BAD("duration_string", T2V_PARAMS("\"duration\":\"5\""), INVALID,
        "parameters.duration must be an integer from 3 to 15, got \"5\""),
    BAD("duration_bool", T2V_PARAMS("\"duration\":true"), INVALID,
        "parameters.duration"),
    BAD("i2v_duration_20", I2V_PARAMS("\"duration\":20"), INVALID,
        "parameters.duration must be an integer from 3 to 15, got 20"),

    /* parameters.watermark, seed, audio_setting */
    BAD("watermark_int", T2V_PARAMS("\"watermark\":1"), INVALID,
        "parameters.watermark must be true or false, got 1"),
    BAD("watermark_zero", T2V_PARAMS("\"watermark\":0"), INVALID,
        "parameters.watermark must be true or false, got 0"),
    BAD("watermark_string", T2V_PARAMS("\"watermark\":\"false\""), INVALID,
        "parameters.watermark must be true or false"),
    BAD("seed_negative", T2V_PARAMS("\"seed\":-1"), INVALID,
        "parameters.seed must be an integer from 0 to 2147483647, got -1"),
    BAD("seed_2_31", T2V_PARAMS("\"seed\":2147483648"), INVALID,
        "parameters.seed must be an integer from 0 to 2147483647, got "
        "2147483648"),
    BAD("seed_string", T2V_PARAMS("\"seed\":\"42\""), INVALID,
        "parameters.seed must be an integer"),
    BAD("seed_real", T2V_PARAMS("\"seed\":1e3"), INVALID,
        "parameters.seed must be an integer from 0 to 2147483647, got "
        "1000.0"),
    BAD("seed_huge", T2V_PARAMS("\"seed\":99999999999999999999"), INVALID,
        "not valid JSON at byte"),
    BAD("audio_setting_unknown", EDIT_PARAMS("\"audio_setting\":\"loud\""),
        INVALID,
        "parameters.audio_setting must be one of auto, origin, got "
        "\"loud\""),
    BAD("audio_setting_number", EDIT_PARAMS("\"audio_setting\":1"), INVALID,
        "parameters.audio_setting must be one of auto, origin"),
};

static void row_result(const char *group, const char *name, int before)
{
    if (unit_failed_checks == before) {
        printf("PASS %s.%s.%s\n", unit_suite, group, name);
        unit_passed++;
    } else {
        printf("FAIL %s.%s.%s\n", unit_suite, group, name);
        unit_failed++;
    }
    fflush(stdout);
}

static bool job_is_empty(const struct job *j)
{
    return j->prompt == NULL && j->n_media == 0 && j->extra == NULL &&
           j->model[0] == '\0' && j->media[0].url == NULL;
}

static void bad_bodies(void)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_rows); i++) {
        const struct bad_row *r = &bad_rows[i];
        int before = unit_failed_checks;
        char *made = r->make ? r->make() : NULL;
        const char *body = made ? made : r->body;
        size_t len = r->len ? r->len : strlen(body);
        struct job job;
        struct errmsg e = { 0 };
        memset(&job, 0xa5, sizeof(job)); /* must come back empty */

        int rc = task_job_parse(body, len, SEED, NULL, &job, &e);
        const char *msg = errmsg_text(&e);
        CHECK(rc < 0);
        CHECK_INT(e.code, rc);
        CHECK_INT(err_status(rc), r->status);
        CHECK_STR(err_code(rc), r->code);
        CHECK(job_is_empty(&job));
        CHECK(strlen(msg) < LIMIT_ERRMSG);
        CHECK(utf8_valid(msg, strlen(msg)));
        if (!strstr(msg, r->fragment)) {
            fprintf(stderr, "  message \"%s\"\n  lacks \"%s\"\n", msg,
                    r->fragment);
            unit_failed_checks++;
        }
        if (unit_failed_checks != before)
            fprintf(stderr, "  body: %.200s\n", body);
        if (rc == 0)
            task_job_fini(&job);
        free(made);
        row_result("bad", r->name, before);
    }
}

/* -------------------------------------------------------- good bodies */

/*
 * A job in one line, so a case states all it expects at once:
 * "<model> res= ratio= dur= wm= seed= audio= [<type>=<url>...] [extra=]".
 */
static char *job_summary(const struct job *j)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s res=%d ratio=%s dur=%d wm=%d seed=%lld audio=%s",
               j->model, j->resolution, j->ratio[0] ? j->ratio : "-",
               j->duration, j->watermark, (long long)j->seed,
               j->audio_origin ? "origin" : "auto");
    for (size_t i = 0; i < j->n_media; i++)
        buf_printf(&b, " %s=%s", task_media_type_name(j->media[i].type),
                   j->media[i].url);
    if (j->extra)
        buf_printf(&b, " extra=%s", j->extra);
    return buf_take(&b);
}

struct good_row {
    const char *name;
    const char *body; /* NULL: made by `make` */
    char *(*make)(void);
    const char *want;    /* job_summary() of the result */
    const char *prompt;  /* NULL: no prompt */
    size_t prompt_chars; /* nonzero: check the length in code points */
};

#define GOOD(name, body, want, prompt)    \
    {                                     \
        name, body, NULL, want, prompt, 0 \
    }

#define DEF_T2V   " res=1080 ratio=16:9 dur=5 wm=1 seed=777 audio=auto"
#define DEF_I2V   " res=1080 ratio=- dur=5 wm=1 seed=777 audio=auto"
#define DEF_EDIT  " res=1080 ratio=- dur=0 wm=1 seed=777 audio=auto"
#define M_T2V     "happyhorse-1.0-t2v"
#define M_I2V     "happyhorse-1.0-i2v"
#define M_R2V     "happyhorse-1.0-r2v"
#define M_EDIT    "happyhorse-1.0-video-edit"
#define DATA_PNG  "data:image/png;base64,"
#define DATA_JPEG "data:image/jpeg;base64,"
#define DATA_WEBP "data:image/webp;base64,"

static const struct good_row good_rows[] = {
    GOOD("t2v_defaults", T2V_INPUT(PROMPT), M_T2V DEF_T2V, "a horse"),
    GOOD("t2v_11", "{" T2V11 ",\"input\":{" PROMPT "}}",
         "happyhorse-1.1-t2v" DEF_T2V, "a horse"),
    GOOD("t2v_every_parameter",
         T2V_PARAMS("\"resolution\":\"480P\",\"ratio\":\"9:16\","
                    "\"duration\":15,\"watermark\":false,\"seed\":0"),
         M_T2V " res=480 ratio=9:16 dur=15 wm=0 seed=0 audio=auto", "a horse"),
    GOOD("t2v_range_ends",
         T2V_PARAMS("\"resolution\":\"720P\",\"ratio\":\"21:9\","
                    "\"duration\":3,\"seed\":2147483647"),
         M_T2V " res=720 ratio=21:9 dur=3 wm=1 seed=2147483647 audio=auto",
         "a horse"),
    GOOD("t2v_empty_media", T2V_INPUT(PROMPT ",\"media\":[]"), M_T2V DEF_T2V,
         "a horse"),
    GOOD("t2v_audio_setting_ignored",
         T2V_PARAMS("\"audio_setting\":\"origin\""), M_T2V DEF_T2V, "a horse"),
    GOOD("t2v_unicode_prompt",
         T2V_INPUT("\"prompt\":\"\xe4\xb8\x80\xe5\x8c\xb9\xe9\xa9\xac "
                   "\\\"q\\\" \\u00e9\""),
         M_T2V DEF_T2V, "\xe4\xb8\x80\xe5\x8c\xb9\xe9\xa9\xac \"q\" \xc3\xa9"),
    GOOD("unknown_fields_ignored",
         "{" T2V ",\"foo\":1,\"input\":{" PROMPT ",\"bar\":[1]},"
         "\"parameters\":{\"baz\":{}}}",
         M_T2V DEF_T2V, "a horse"),
    GOOD("null_members_absent",
         "{" T2V ",\"input\":{" PROMPT ",\"media\":null,\"img_url\":null},"
         "\"parameters\":{\"resolution\":null,\"ratio\":null,"
         "\"duration\":null,\"watermark\":null,\"seed\":null,"
         "\"size\":null,\"negative_prompt\":null,\"audio\":null}}",
         M_T2V DEF_T2V, "a horse"),
    GOOD("null_parameters",
         "{" T2V ",\"input\":{" PROMPT "},"
         "\"parameters\":null}",
         M_T2V DEF_T2V, "a horse"),

    /* i2v */
    GOOD("i2v_media", I2V_MEDIA(FF(IMG)), M_I2V DEF_I2V " first_frame=" IMG,
         NULL),
    GOOD("i2v_11_with_prompt",
         "{" I2V11 ",\"input\":{" PROMPT ",\"media\":[" FF(IMG) "]}}",
         "happyhorse-1.1-i2v" DEF_I2V " first_frame=" IMG, "a horse"),
    GOOD("i2v_empty_prompt_is_none",
         I2V_INPUT("\"prompt\":\"\",\"media\":[" FF(IMG) "]"),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("i2v_ratio_ignored",
         I2V_PARAMS("\"ratio\":\"21:9\",\"resolution\":\"720P\","
                    "\"duration\":10"),
         M_I2V " res=720 ratio=- dur=10 wm=1 seed=777 audio=auto"
               " first_frame=" IMG,
         NULL),
    GOOD("i2v_bad_ratio_ignored", I2V_PARAMS("\"ratio\":42"),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("i2v_size_gives_tier_only", I2V_PARAMS("\"size\":\"624*1456\""),
         M_I2V " res=720 ratio=- dur=5 wm=1 seed=777 audio=auto"
               " first_frame=" IMG,
         NULL),
    GOOD("i2v_scheme_case", I2V_MEDIA(FF("HTTPS://Example.com/A.png")),
         M_I2V DEF_I2V " first_frame=https://Example.com/A.png", NULL),
    GOOD("i2v_url_userinfo_port_query",
         I2V_MEDIA(FF("https://u:p@example.com:8443/a.png?x=1#f")),
         M_I2V DEF_I2V " first_frame=https://u:p@example.com:8443/a.png?x=1#f",
         NULL),
    GOOD("i2v_data_uri", I2V_MEDIA(FF("data:image/png;base64," PNG_B64)),
         M_I2V DEF_I2V " first_frame=" DATA_PNG PNG_B64, NULL),
    GOOD("i2v_data_uri_upper_case",
         I2V_MEDIA(FF("DATA:IMAGE/WEBP;BASE64," WEBP_B64)),
         M_I2V DEF_I2V " first_frame=" DATA_WEBP WEBP_B64, NULL),
    GOOD("i2v_data_uri_jpg", I2V_MEDIA(FF("data:image/jpg;base64," JPEG_B64)),
         M_I2V DEF_I2V " first_frame=" DATA_JPEG JPEG_B64, NULL),
    GOOD("img_url_http", I2V_INPUT("\"img_url\":\"" IMG "\""),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("img_url_bare_png", I2V_INPUT("\"img_url\":\"" PNG_B64 "\""),
         M_I2V DEF_I2V " first_frame=" DATA_PNG PNG_B64, NULL),
    GOOD("img_url_bare_jpeg", I2V_INPUT("\"img_url\":\"" JPEG_B64 "\""),
         M_I2V DEF_I2V " first_frame=" DATA_JPEG JPEG_B64, NULL),
    GOOD("img_url_bare_webp", I2V_INPUT("\"img_url\":\"" WEBP_B64 "\""),
         M_I2V DEF_I2V " first_frame=" DATA_WEBP WEBP_B64, NULL),
    GOOD("img_url_data_uri",
         I2V_INPUT("\"img_url\":\"data:image/jpeg;base64," JPEG_B64 "\""),
         M_I2V DEF_I2V " first_frame=" DATA_JPEG JPEG_B64, NULL),
    GOOD("first_frame_url", I2V_INPUT("\"first_frame_url\":\"" IMG "\""),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("first_frame_url_bare_png",
         I2V_INPUT("\"first_frame_url\":\"" PNG_B64 "\""),
         M_I2V DEF_I2V " first_frame=" DATA_PNG PNG_B64, NULL),
    GOOD("img_url_wins_over_first_frame_url",
         I2V_INPUT("\"first_frame_url\":\"" IMG2 "\",\"img_url\":\"" IMG "\""),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("media_wins_over_img_url",
         I2V_INPUT("\"img_url\":\"" IMG2 "\",\"media\":[" FF(IMG) "]"),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("media_wins_over_bad_alias",
         I2V_INPUT("\"img_url\":5,\"video_url\":\"x\",\"media\":[" FF(IMG) "]"),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("empty_media_uses_alias",
         I2V_INPUT("\"media\":[],\"img_url\":\"" IMG "\""),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),
    GOOD("empty_reference_urls_ignored",
         I2V_INPUT("\"img_url\":\"" IMG "\",\"reference_urls\":[]"),
         M_I2V DEF_I2V " first_frame=" IMG, NULL),

    /* r2v */
    GOOD("r2v_media_order", R2V_MEDIA(REF(IMG3) "," REF(IMG) "," REF(IMG2)),
         M_R2V DEF_T2V " reference_image=" IMG3 " reference_image=" IMG
                       " reference_image=" IMG2,
         "a horse"),
    GOOD("r2v_11_ratio",
         "{" R2V11 ",\"input\":{" PROMPT
         ",\"media\":[" REF(IMG) "]},\"parameters\":{\"ratio\":\"1:1\"}}",
         "happyhorse-1.1-r2v res=1080 ratio=1:1 dur=5 wm=1 seed=777 "
         "audio=auto reference_image=" IMG,
         "a horse"),
    GOOD(
        "reference_urls_order",
        R2V_INPUT("\"reference_urls\":[\"" IMG2 "\",\"" IMG3 "\",\"" IMG "\"]"),
        M_R2V DEF_T2V " reference_image=" IMG2 " reference_image=" IMG3
                      " reference_image=" IMG,
        "a horse"),
    GOOD("reference_url", R2V_INPUT("\"reference_url\":\"" IMG "\""),
         M_R2V DEF_T2V " reference_image=" IMG, "a horse"),
    GOOD("reference_urls_then_reference_url",
         R2V_INPUT("\"reference_url\":\"" IMG3 "\",\"reference_urls\":[\"" IMG
                   "\",\"" IMG2 "\"]"),
         M_R2V DEF_T2V " reference_image=" IMG " reference_image=" IMG2
                       " reference_image=" IMG3,
         "a horse"),
    GOOD("r2v_data_uri_reference",
         R2V_MEDIA(REF("data:image/png;base64," PNG_B64) "," REF(IMG)),
         M_R2V DEF_T2V " reference_image=" DATA_PNG PNG_B64
                       " reference_image=" IMG,
         "a horse"),

    /* video-edit */
    GOOD("edit_media", EDIT_MEDIA(VIDEO(VID)), M_EDIT DEF_EDIT " video=" VID,
         "a horse"),
    GOOD("edit_five_references",
         EDIT_MEDIA(REF(IMG) "," VIDEO(VID) "," REF(IMG2) "," REF(IMG3) "," REF(
             IMG) "," REF(IMG2)),
         M_EDIT DEF_EDIT " reference_image=" IMG " video=" VID
                         " reference_image=" IMG2 " reference_image=" IMG3
                         " reference_image=" IMG " reference_image=" IMG2,
         "a horse"),
    GOOD("edit_duration_and_ratio_ignored",
         EDIT_PARAMS("\"duration\":99,\"ratio\":\"nope\",\"resolution\":"
                     "\"480P\""),
         M_EDIT " res=480 ratio=- dur=0 wm=1 seed=777 audio=auto video=" VID,
         "a horse"),
    GOOD("edit_audio_origin", EDIT_PARAMS("\"audio_setting\":\"origin\""),
         M_EDIT " res=1080 ratio=- dur=0 wm=1 seed=777 audio=origin video=" VID,
         "a horse"),
    GOOD("edit_audio_auto", EDIT_PARAMS("\"audio_setting\":\"auto\""),
         M_EDIT DEF_EDIT " video=" VID, "a horse"),
    GOOD("video_url_and_reference_urls",
         EDIT_INPUT("\"reference_urls\":[\"" IMG "\",\"" IMG2
                    "\"],\"video_url\":\"" VID "\""),
         M_EDIT DEF_EDIT " video=" VID " reference_image=" IMG
                         " reference_image=" IMG2,
         "a horse"),

    /* parameters.size */
    GOOD("size_1280x720", T2V_PARAMS("\"size\":\"1280*720\""),
         M_T2V " res=720 ratio=16:9 dur=5 wm=1 seed=777 audio=auto", "a horse"),
    GOOD("size_832x1088", T2V_PARAMS("\"size\":\"832*1088\""),
         M_T2V " res=720 ratio=3:4 dur=5 wm=1 seed=777 audio=auto", "a horse"),
    GOOD("size_976x416", T2V_PARAMS("\"size\":\"976*416\""),
         M_T2V " res=480 ratio=21:9 dur=5 wm=1 seed=777 audio=auto", "a horse"),
    GOOD("size_then_ratio_wins",
         T2V_PARAMS("\"ratio\":\"1:1\",\"size\":\"1920*1080\""),
         M_T2V " res=1080 ratio=1:1 dur=5 wm=1 seed=777 audio=auto", "a horse"),
    GOOD("size_then_resolution_wins",
         T2V_PARAMS("\"size\":\"1280*720\",\"resolution\":\"480P\""),
         M_T2V " res=480 ratio=16:9 dur=5 wm=1 seed=777 audio=auto", "a horse"),

    /* pass-through fields */
    GOOD("extra_both_groups",
         "{" T2V ",\"input\":{" PROMPT ",\"negative_prompt\":\"blurry\","
         "\"extend_prompt\":true,\"function\":\"f\",\"audio_url\":\"" VID
         "\"},\"parameters\":{\"audio\":{\"x\":[1,2.5]},"
         "\"shot_type\":\"multi\",\"prompt_extend\":false}}",
         M_T2V DEF_T2V
         " extra={\"input\":{\"extend_prompt\":true,\"function\":\"f\","
         "\"negative_prompt\":\"blurry\",\"audio_url\":\"" VID "\"},"
         "\"parameters\":{\"prompt_extend\":false,\"shot_type\":\"multi\","
         "\"audio\":{\"x\":[1,2.5]}}}",
         "a horse"),
    GOOD("extra_parameters_only",
         T2V_PARAMS("\"prompt_extend\":true,\"audio\":null"),
         M_T2V DEF_T2V " extra={\"parameters\":{\"prompt_extend\":true}}",
         "a horse"),
    GOOD("extra_input_only",
         I2V_INPUT("\"img_url\":\"" IMG "\",\"negative_prompt\":\"\xe9\xa9\xac"
                   "\""),
         M_I2V DEF_I2V " first_frame=" IMG
                       " extra={\"input\":{\"negative_prompt\":\"\xe9\xa9\xac"
                       "\"}}",
         NULL),

    /* paddock-upload:// (the upload extension): videos and images, in
     * media and in the aliases; stored in lower case */
    GOOD("edit_upload", EDIT_MEDIA(VIDEO(UP)), M_EDIT DEF_EDIT " video=" UP,
         "a horse"),
    GOOD("edit_upload_upper_case", EDIT_MEDIA(VIDEO(UP_UPPER)),
         M_EDIT DEF_EDIT " video=" UP, "a horse"),
    GOOD("edit_upload_alias_and_refs",
         EDIT_INPUT("\"video_url\":\"" UP "\",\"reference_urls\":[\"" UP2
                    "\",\"" IMG "\"]"),
         M_EDIT DEF_EDIT " video=" UP " reference_image=" UP2
                         " reference_image=" IMG,
         "a horse"),
    GOOD("i2v_upload", I2V_MEDIA(FF(UP)), M_I2V DEF_I2V " first_frame=" UP,
         NULL),
    GOOD("i2v_upload_img_url", I2V_INPUT("\"img_url\":\"" UP_UPPER "\""),
         M_I2V DEF_I2V " first_frame=" UP, NULL),
    GOOD("i2v_oss", I2V_MEDIA(FF(OSS_UPPER)), M_I2V DEF_I2V " first_frame=" OSS,
         NULL),
    GOOD("i2v_oss_img_url", I2V_INPUT("\"img_url\":\"" OSS "\""),
         M_I2V DEF_I2V " first_frame=" OSS, NULL),
    GOOD("edit_oss", EDIT_MEDIA(VIDEO(OSS_VID) "," REF(OSS)),
         M_EDIT DEF_EDIT " video=oss://paddock-instant/cfg_1/0190f5b2/clip "
                         "\xc3\xa9.mp4 reference_image=" OSS,
         "a horse"),
    GOOD("r2v_upload", R2V_MEDIA(REF(UP) "," REF(IMG)),
         M_R2V DEF_T2V " reference_image=" UP " reference_image=" IMG,
         "a horse"),

    /* generated */
    { "url_at_limit", NULL, gen_url_at_limit, NULL, NULL, 0 },
    { "data_uri_at_20mb", NULL, gen_data_uri_at_limit, NULL, NULL, 0 },
    { "prompt_cut_5000", NULL, gen_prompt_ascii, M_T2V DEF_T2V, NULL, 5000 },
    { "prompt_cut_2500_cjk", NULL, gen_prompt_cjk, M_T2V DEF_T2V, NULL, 2500 },
};

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void good_bodies(void)
{
    for (size_t i = 0; i < ARRAY_LEN(good_rows); i++) {
        const struct good_row *r = &good_rows[i];
        int before = unit_failed_checks;
        char *made = r->make ? r->make() : NULL;
        const char *body = made ? made : r->body;
        struct job job;
        struct errmsg e = { 0 };

        int rc = task_job_parse(body, strlen(body), SEED, NULL, &job, &e);
        if (rc < 0) {
            fprintf(stderr, "  refused: %s\n", errmsg_text(&e));
            unit_failed_checks++;
        } else {
            char *have = job_summary(&job);
            if (r->want)
                CHECK_STR(have, r->want);
            else
                CHECK_INT(job.n_media, 1);
            if (r->prompt_chars)
                CHECK_INT(job.prompt ? code_points(job.prompt) : 0,
                          r->prompt_chars);
            else if (r->prompt)
                CHECK_STR(job.prompt, r->prompt);
            else
                CHECK(job.prompt == NULL);
            free(have);
        }
        if (unit_failed_checks != before)
            fprintf(stderr, "  body: %.200s\n", body);
        task_job_fini(&job);
        free(made);
        row_result("good", r->name, before);
    }
}

/* ------------------------------------------------------------- others */

static void seed_from_caller(void)
{
    struct job job;
    struct errmsg e = { 0 };
    const char *body = T2V_INPUT(PROMPT);
    CHECK_INT(task_job_parse(body, strlen(body), 123456, NULL, &job, &e), 0);
    CHECK_INT(job.seed, 123456);
    task_job_fini(&job);
    /* A body seed wins over the caller's. */
    body = T2V_PARAMS("\"seed\":42");
    CHECK_INT(task_job_parse(body, strlen(body), 123456, NULL, &job, &e), 0);
    CHECK_INT(job.seed, 42);
    task_job_fini(&job);
    /* Whatever the caller drew, the job's seed is in the API's range. */
    body = T2V_INPUT(PROMPT);
    CHECK_INT(task_job_parse(body, strlen(body), -1, NULL, &job, &e), 0);
    CHECK(job.seed >= 0 && job.seed <= LIMIT_SEED_MAX);
    task_job_fini(&job);
}

static void null_body_and_fini(void)
{
    struct job job;
    struct errmsg e = { 0 };
    CHECK_INT(task_job_parse(NULL, 0, SEED, NULL, &job, &e),
              ERR_INVALID_PARAMETER);
    CHECK(job_is_empty(&job));
    task_job_fini(NULL);
    task_job_fini(&job); /* twice is fine */
}

/* The request field each entry came from, for the API's messages. */
static void media_fields(void)
{
    struct job job;
    struct errmsg e = { 0 };
    const char *body = EDIT_MEDIA(VIDEO(UP) "," REF(IMG));
    CHECK_INT(task_job_parse(body, strlen(body), SEED, NULL, &job, &e), 0);
    CHECK_STR(job.media[0].field, "input.media[0].url");
    CHECK_STR(job.media[1].field, "input.media[1].url");
    task_job_fini(&job);
    body = EDIT_INPUT("\"reference_urls\":[\"" IMG "\",\"" UP2
                      "\"],\"video_url\":\"" UP "\"");
    CHECK_INT(task_job_parse(body, strlen(body), SEED, NULL, &job, &e), 0);
    CHECK_STR(job.media[0].field, "input.video_url");
    CHECK_STR(job.media[1].field, "input.reference_urls[0]");
    CHECK_STR(job.media[2].field, "input.reference_urls[1]");
    task_job_fini(&job);
}

/* task_oss_key takes what task_job_parse stores. */
static void oss_keys(void)
{
    CHECK_STR(task_oss_key(OSS), "paddock-instant/cfg_1/0190f5b2/frame.png");
    CHECK(task_oss_key(OSS_UPPER) == NULL);
    CHECK(task_oss_key("oss://") == NULL);
    CHECK(task_oss_key("https://example.com/a.png") == NULL);
    CHECK(task_oss_key(NULL) == NULL);
}

/* task_upload_id takes exactly what task_job_parse stores. */
static void upload_ids(void)
{
    char id[UUID_STR_LEN + 1] = "";
    CHECK(task_upload_id(UP, id));
    CHECK_STR(id, "0190f5b2-7c1e-4d2a-9b3c-5e6f7a8b9c0d");
    CHECK(!task_upload_id(UP_UPPER, id));
    CHECK(!task_upload_id(UP "x", id));
    CHECK(!task_upload_id("paddock-upload://", id));
    CHECK(!task_upload_id("https://example.com/v.mp4", id));
    CHECK(!task_upload_id("Paddock-upload://0190f5b2-7c1e-4d2a-9b3c-"
                          "5e6f7a8b9c0d",
                          id));
    CHECK(!task_upload_id(NULL, id));
}

/* from_json(to_json(j)) is j, field for field, for every good body. */
static void store_round_trip(void)
{
    size_t n_models;
    const struct task_model *models = task_models(&n_models);
    bool seen[16] = { false };
    for (size_t i = 0; i < ARRAY_LEN(good_rows); i++) {
        const struct good_row *r = &good_rows[i];
        char *made = r->make ? r->make() : NULL;
        const char *body = made ? made : r->body;
        struct job a, b;
        struct errmsg e = { 0 };
        CHECK_INT(task_job_parse(body, strlen(body), SEED, NULL, &a, &e), 0);
        char *ja = task_job_to_json(&a);
        CHECK_INT(task_job_from_json(ja, &b), 0);
        char *jb = task_job_to_json(&b);
        char *sa = job_summary(&a), *sb = job_summary(&b);
        if (strlen(sa) < 4096)
            CHECK_STR(sb, sa);
        else
            CHECK(strcmp(sa, sb) == 0);
        CHECK(strcmp(ja, jb) == 0);
        CHECK_INT(b.kind, a.kind);
        CHECK_INT(b.n_media, a.n_media);
        CHECK((a.prompt == NULL) == (b.prompt == NULL));
        if (a.prompt && b.prompt)
            CHECK(strcmp(a.prompt, b.prompt) == 0);
        CHECK((a.extra == NULL) == (b.extra == NULL));
        if (a.extra && b.extra)
            CHECK_STR(b.extra, a.extra);
        for (size_t m = 0; m < n_models && m < ARRAY_LEN(seen); m++)
            if (strcmp(models[m].name, a.model) == 0)
                seen[m] = true;
        free(sa);
        free(sb);
        free(ja);
        free(jb);
        task_job_fini(&a);
        task_job_fini(&b);
        free(made);
    }
    for (size_t m = 0; m < n_models && m < ARRAY_LEN(seen); m++)
        if (!seen[m])
            fprintf(stderr, "  no round trip for %s\n", models[m].name);
    for (size_t m = 0; m < n_models && m < ARRAY_LEN(seen); m++)
        CHECK(seen[m]);
}

static void store_json_shape(void)
{
    struct job job;
    struct errmsg e = { 0 };
    const char *body =
        EDIT_INPUT("\"video_url\":\"" VID "\",\"negative_prompt\":\"x\"");
    CHECK_INT(task_job_parse(body, strlen(body), SEED, NULL, &job, &e), 0);
    char *json = task_job_to_json(&job);
    CHECK_STR(json, "{\"model\":\"happyhorse-1.0-video-edit\","
                    "\"prompt\":\"a horse\",\"media\":[{\"type\":\"video\","
                    "\"url\":\"" VID "\"}],\"resolution\":1080,\"ratio\":\"\","
                    "\"duration\":0,\"watermark\":true,\"seed\":777,"
                    "\"audio_setting\":\"auto\",\"extra\":{\"input\":"
                    "{\"negative_prompt\":\"x\"}}}");
    free(json);
    task_job_fini(&job);
}

static void store_json_refused(void)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"model\":\"happyhorse-9\"}",
        /* valid but for one field each */
        "{\"model\":\"happyhorse-1.0-t2v\",\"media\":[],\"resolution\":1080,"
        "\"ratio\":\"16:9\",\"duration\":5,\"watermark\":true,\"seed\":1,"
        "\"audio_setting\":\"loud\"}",
        "{\"model\":\"happyhorse-1.0-t2v\",\"media\":[{\"type\":\"x\","
        "\"url\":\"u\"}],\"resolution\":1080,\"ratio\":\"16:9\","
        "\"duration\":5,\"watermark\":true,\"seed\":1,"
        "\"audio_setting\":\"auto\"}",
        "{\"model\":\"happyhorse-1.0-t2v\",\"media\":[],\"resolution\":1000,"
        "\"ratio\":\"16:9\",\"duration\":5,\"watermark\":true,\"seed\":1,"
        "\"audio_setting\":\"auto\"}",
        "{\"model\":\"happyhorse-1.0-t2v\",\"media\":[],\"resolution\":1080,"
        "\"ratio\":\"16:9:16:9\",\"duration\":5,\"watermark\":true,"
        "\"seed\":1,\"audio_setting\":\"auto\"}",
        "{\"model\":\"happyhorse-1.0-t2v\",\"media\":[],\"resolution\":1080,"
        "\"ratio\":\"16:9\",\"duration\":5,\"watermark\":1,\"seed\":1,"
        "\"audio_setting\":\"auto\"}",
        "{\"model\":\"happyhorse-1.0-t2v\",\"media\":[],\"resolution\":1080,"
        "\"ratio\":\"16:9\",\"duration\":5,\"watermark\":true,\"seed\":1,"
        "\"audio_setting\":\"auto\",\"extra\":[]}",
    };
    const char *good =
        "{\"model\":\"happyhorse-1.0-t2v\",\"media\":[],\"resolution\":1080,"
        "\"ratio\":\"16:9\",\"duration\":5,\"watermark\":true,\"seed\":1,"
        "\"audio_setting\":\"auto\"}";
    struct job job;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        CHECK_INT(task_job_from_json(bad[i], &job), ERR_INTERNAL);
        CHECK(job_is_empty(&job));
    }
    CHECK_INT(task_job_from_json(NULL, &job), ERR_INTERNAL);
    CHECK_INT(task_job_from_json(good, &job), 0);
    CHECK(job.prompt == NULL && job.extra == NULL && job.seed == 1);
    task_job_fini(&job);
}

int main(void)
{
    unit_suite = "task_job";
    bad_bodies();
    good_bodies();
    RUN(seed_from_caller);
    RUN(null_body_and_fini);
    RUN(media_fields);
    RUN(upload_ids);
    RUN(oss_keys);
    RUN(store_round_trip);
    RUN(store_json_shape);
    RUN(store_json_refused);
    fprintf(stderr, "%zu bad bodies, %zu good bodies\n", ARRAY_LEN(bad_rows),
            ARRAY_LEN(good_rows));
    return UNIT_END();
}
