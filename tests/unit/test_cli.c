/*
 * Unit tests of src/cli without a network: flag parsing, the endpoint
 * (base URL, dialect, key from flags or environment), durations, image
 * sniffing, submit bodies (local images inlined), -o checks. The HTTP side
 * is tested end to end by tests/api/test_cli.py.
 */
#include "../../src/cli/cli.h"
#include "unit.h"

#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-test-cli-XXXXXX";

/* A stand-in environment for cli_endpoint_init. */
static const char *fake_env[8][2];

static char *env_get(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(fake_env) && fake_env[i][0]; i++)
        if (strcmp(fake_env[i][0], name) == 0)
            return (char *)fake_env[i][1];
    return NULL;
}

static void env_set(size_t n, ...)
{
    va_list ap;
    memset(fake_env, 0, sizeof(fake_env));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        fake_env[i][0] = va_arg(ap, const char *);
        fake_env[i][1] = va_arg(ap, const char *);
    }
    va_end(ap);
}

static int parse(enum cli_cmd cmd, struct cli_opts *o, struct errmsg *e, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, e);
    for (const char *a; (a = va_arg(ap, const char *)) && argc < 32;)
        argv[argc++] = (char *)a;
    va_end(ap);
    memset(e, 0, sizeof(*e));
    return cli_parse(cmd, argc, argv, o, e);
}

static void parse_flags(void)
{
    struct cli_opts o;
    struct errmsg e;
    CHECK_INT(parse(CLI_SUBMIT, &o, &e, "--model", "t2v", "--prompt=a b",
                    "--ref", "x.png", "--ref", "y.png", "--no-watermark",
                    "--wait", "-o", "out.mp4", NULL),
              0);
    CHECK_STR(o.model, "t2v");
    CHECK_STR(o.prompt, "a b");
    CHECK_INT(o.n_refs, 2);
    CHECK_STR(o.refs[1], "y.png");
    CHECK(o.no_watermark && o.wait);
    CHECK_STR(o.output, "out.mp4");

    CHECK_INT(parse(CLI_WAIT, &o, &e, "abc-123", "--timeout", "10m",
                    "-oout.mp4", NULL),
              0);
    CHECK_STR(o.task_id, "abc-123");
    CHECK_STR(o.timeout, "10m");
    CHECK_STR(o.output, "out.mp4");

    /* --help needs nothing else. */
    CHECK_INT(parse(CLI_GET, &o, &e, "--help", NULL), 0);
    CHECK(o.help);
}

static void parse_errors(void)
{
    struct cli_opts o;
    struct errmsg e;
    CHECK_INT(parse(CLI_SUBMIT, &o, &e, "--bogus", NULL),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "unknown option --bogus"));
    CHECK_INT(parse(CLI_GET, &o, &e, "id", "--prompt", "x", NULL),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "--prompt does not apply to paddock get"));
    CHECK_INT(parse(CLI_SUBMIT, &o, &e, "--model", NULL),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "--model needs a value"));
    CHECK_INT(parse(CLI_SUBMIT, &o, &e, "--json=1", NULL),
              ERR_INVALID_PARAMETER);
    CHECK_INT(parse(CLI_GET, &o, &e, NULL), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "TASK_ID is missing"));
    CHECK_INT(parse(CLI_GET, &o, &e, "a", "b", NULL), ERR_INVALID_PARAMETER);
    CHECK_INT(parse(CLI_GET, &o, &e, "../etc", NULL), ERR_INVALID_PARAMETER);
    CHECK_INT(parse(CLI_LIST, &o, &e, "extra", NULL), ERR_INVALID_PARAMETER);
    CHECK_INT(parse(CLI_GET, &o, &e, "x", "--dialect", "openai", NULL),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "--dialect"));
    CHECK_INT(parse(CLI_SUBMIT, &o, &e, "-o", "x.mp4", NULL),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "-o needs --wait"));
    char *ten[] = { "--ref", "a", "--ref", "a", "--ref", "a", "--ref", "a",
                    "--ref", "a", "--ref", "a", "--ref", "a", "--ref", "a",
                    "--ref", "a", "--ref", "a" };
    memset(&e, 0, sizeof(e));
    CHECK_INT(cli_parse(CLI_SUBMIT, 20, ten, &o, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "--ref: at most 9"));
}

static void endpoint(void)
{
    struct cli_opts o;
    struct hh_endpoint ep;
    struct errmsg e = { 0 };

    /* Defaults and the environment's order of keys. */
    memset(&o, 0, sizeof(o));
    env_set(2, "TT_API_KEY", "tt", "DASHSCOPE_API_KEY", "ds");
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), 0);
    CHECK_STR(ep.root, "http://127.0.0.1:8080");
    CHECK_INT(ep.dialect, HH_DASHSCOPE);
    CHECK_STR(ep.auth, "Authorization: Bearer ds");
    hh_endpoint_fini(&ep);

    env_set(3, "PADDOCK_BASE_URL", "https://api.ttapi.io/", "TT_API_KEY", "tt",
            "PADDOCK_API_KEY", "pk");
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), 0);
    CHECK_STR(ep.root, "https://api.ttapi.io/happyhorse");
    CHECK_STR(ep.auth, "TT-API-KEY: pk");
    hh_endpoint_fini(&ep);

    /* Flags win; SDK-style base URLs are accepted. */
    o.base_url = "https://dashscope-intl.aliyuncs.com/api/v1/";
    o.key = "flag-key";
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), 0);
    CHECK_STR(ep.root, "https://dashscope-intl.aliyuncs.com");
    CHECK_STR(ep.auth, "Authorization: Bearer flag-key");
    hh_endpoint_fini(&ep);

    o.base_url = "http://127.0.0.1:9/happyhorse";
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), 0);
    CHECK_INT(ep.dialect, HH_TTAPI);
    CHECK_STR(ep.root, "http://127.0.0.1:9/happyhorse");
    hh_endpoint_fini(&ep);

    o.base_url = "http://127.0.0.1:9";
    o.dialect = "ttapi";
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), 0);
    CHECK_STR(ep.root, "http://127.0.0.1:9/happyhorse");
    hh_endpoint_fini(&ep);

    /* Errors name their source. */
    o.dialect = NULL;
    o.base_url = "ftp://x";
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "--base-url"));
    o.base_url = "http://";
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), ERR_INVALID_PARAMETER);
    o.base_url = NULL;
    o.key = "has space";
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "--key"));
    o.key = NULL;
    env_set(1, "DASHSCOPE_API_KEY", "bad\nkey");
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "$DASHSCOPE_API_KEY"));
    env_set(0);
    CHECK_INT(cli_endpoint_init(&ep, &o, env_get, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "no API key"));
    hh_endpoint_fini(&ep);
}

static void dialect_guess(void)
{
    CHECK_INT(cli_guess_dialect("https://api.ttapi.io"), HH_TTAPI);
    CHECK_INT(cli_guess_dialect("https://API.TTAPI.IO/x"), HH_TTAPI);
    CHECK_INT(cli_guess_dialect("https://dashscope.aliyuncs.com"),
              HH_DASHSCOPE);
    CHECK_INT(cli_guess_dialect("http://127.0.0.1:8080"), HH_DASHSCOPE);
    CHECK_INT(cli_guess_dialect("http://h/happyhorse/"), HH_TTAPI);
    /* Only the host counts, not user info or the path. */
    CHECK_INT(cli_guess_dialect("http://ttapi@example.com/"), HH_DASHSCOPE);
    CHECK_INT(cli_guess_dialect("http://example.com/ttapi"), HH_DASHSCOPE);
}

/* --timeout in the one duration syntax (its cases: test_core.c), 1s to
 * 7d. */
static void durations(void)
{
    int64_t ms = 0;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = { { "90", 90000 }, { "1h30m", 5400000 }, { "7d", 604800000 } };
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        struct cli_opts o = { .timeout = good[i].s };
        struct errmsg e = { 0 };
        CHECK_INT(cli_timeout(&o, &ms, &e), 0);
        CHECK_INT(ms, good[i].ms);
    }
    static const char *const bad[] = { "999ms", "8d", "10x", "" };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct cli_opts o = { .timeout = bad[i] };
        struct errmsg e = { 0 };
        CHECK_INT(cli_timeout(&o, &ms, &e), ERR_INVALID_PARAMETER);
        CHECK(strstr(e.text, "--timeout"));
    }

    struct cli_opts o = { .timeout = "0s" };
    struct errmsg e = { 0 };
    CHECK_INT(cli_timeout(&o, &ms, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "--timeout"));
    o.timeout = NULL;
    CHECK_INT(cli_timeout(&o, &ms, &e), 0);
    CHECK_INT(ms, CLI_WAIT_DEFAULT_MS);
}

static void video_types(void)
{
    /* Images by their magic bytes are the rulebook's (test_task_rules.c);
     * the CLI tells a local video by its first box. */
    CHECK_STR(cli_video_type("\0\0\0 ftypisom", 12), "video/mp4");
    CHECK_STR(cli_video_type("\0\0\0\024ftypqt  ", 12), "video/mp4");
    CHECK_STR(cli_video_type("\0\0\0\010wide....", 12), "video/mp4");
    CHECK(cli_video_type("\x1a\x45\xdf\xa3....", 8) == NULL); /* WebM */
    CHECK(cli_video_type("\0\0\0 ftyp", 7) == NULL);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* Build a body from flags; the JSON parse of it, or NULL with *e. */
static json_t *body_of(struct errmsg *e, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    struct cli_opts o;
    struct buf b = BUF_INIT;
    json_t *j = NULL;
    va_start(ap, e);
    for (const char *a; (a = va_arg(ap, const char *)) && argc < 32;)
        argv[argc++] = (char *)a;
    va_end(ap);
    memset(e, 0, sizeof(*e));
    if (cli_parse(CLI_SUBMIT, argc, argv, &o, e) == 0 &&
        cli_submit_body(&o, &b, NULL, e) == 0)
        j = json_loadb(b.data, b.len, 0, NULL);
    buf_fini(&b);
    return j;
}

static void submit_bodies(void)
{
    struct errmsg e;
    char png[300], gif[300], big[300];
    static const unsigned char png_bytes[] = { 0x89, 'P',  'N',  'G', '\r',
                                               '\n', 0x1a, '\n', 1,   2 };
    snprintf(png, sizeof(png), "%s/a.png", dir);
    snprintf(gif, sizeof(gif), "%s/a.gif", dir);
    snprintf(big, sizeof(big), "%s/big.png", dir);
    write_file(png, png_bytes, sizeof(png_bytes));
    write_file(gif, "GIF89a", 6);
    FILE *f = fopen(big, "wb");
    if (f) { /* sparse, just over the cap */
        fseek(f, LIMIT_IMAGE_BYTES, SEEK_SET);
        fputc(0, f);
        fclose(f);
    }

    /* t2v: parameters canonicalised, watermark off. */
    json_t *j = body_of(&e, "--prompt", "a horse", "--resolution", "720p",
                        "--ratio", "9:16", "--duration", "3", "--seed", "7",
                        "--no-watermark", NULL);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "model")),
              "happyhorse-1.0-t2v");
    json_t *p = json_object_get(j, "parameters");
    CHECK_STR(json_string_value(json_object_get(p, "resolution")), "720P");
    CHECK_STR(json_string_value(json_object_get(p, "ratio")), "9:16");
    CHECK_INT(json_integer_value(json_object_get(p, "duration")), 3);
    CHECK_INT(json_integer_value(json_object_get(p, "seed")), 7);
    CHECK(json_is_false(json_object_get(p, "watermark")));
    json_decref(j);

    /* i2v from a local PNG: a data URL of exactly its bytes. */
    j = body_of(&e, "--image", png, NULL);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "model")),
              "happyhorse-1.0-i2v");
    json_t *m = json_array_get(
        json_object_get(json_object_get(j, "input"), "media"), 0);
    CHECK_STR(json_string_value(json_object_get(m, "type")), "first_frame");
    CHECK_STR(json_string_value(json_object_get(m, "url")),
              "data:image/png;base64,iVBORw0KGgoBAg==");
    CHECK(json_object_get(j, "parameters") == NULL);
    json_decref(j);

    /* r2v: references in order, URLs passed on; 1.1 shortcut. */
    j = body_of(&e, "--model", "1.1-r2v", "--prompt", "p", "--ref", png,
                "--ref", "https://example.com/b.jpg", NULL);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "model")),
              "happyhorse-1.1-r2v");
    json_t *media = json_object_get(json_object_get(j, "input"), "media");
    CHECK_INT(json_array_size(media), 2);
    CHECK_STR(
        json_string_value(json_object_get(json_array_get(media, 1), "url")),
        "https://example.com/b.jpg");
    json_decref(j);

    /* Unknown models pass unchecked. */
    j = body_of(&e, "--model", "wan2.5-t2v-preview", "--image",
                "https://x/y.png", NULL);
    CHECK(j != NULL);
    json_decref(j);

    /* Errors name the flag. */
    static const struct {
        const char *args[8];
        const char *want;
    } bad[] = {
        { { "--duration", "20", "--prompt", "p" }, "--duration" },
        { { "--seed", "-1", "--prompt", "p" }, "--seed" },
        { { "--resolution", "4K", "--prompt", "p" }, "--resolution" },
        { { "--ratio", "2:1", "--prompt", "p" }, "--ratio" },
        { { "--audio-setting", "loud", "--prompt", "p" }, "--audio-setting" },
        { { "--model", "t2v" }, "--prompt is required" },
        { { "--model", "i2v" }, "--image is required" },
        { { "--model", "t2v", "--prompt", "p", "--image", "x.png" },
          "--image does not apply" },
        { { "--model", "edit", "--prompt", "p" }, "--video is required" },
        { { "--model", "edit", "--prompt", "p", "--video", "clip.mp4" },
          "--video clip.mp4: No such file" },
        { { "--model", "bad model" }, "--model" },
        { { "--image", "/nonexistent/x.png" }, "--image /nonexistent/x.png" },
        { { "--image", "ftp://h/x.png" }, "only http(s) URLs" },
        { { "--image", "data:text/plain;base64,AA==" }, "data: URL must be" },
        { { "--image", "http://h/a b.png" }, "whitespace" },
        /* The kinds' rules are the server's (test_task_rules.c). */
        { { "--model", "t2v", "--prompt", "p", "--ref", "x.png" },
          "--ref does not apply to happyhorse-1.0-t2v" },
        { { "--model", "i2v", "--video", "x.mp4", "--image", "x.png" },
          "--video does not apply to happyhorse-1.0-i2v" },
        { { "--model", "r2v", "--prompt", "p" },
          "--ref: happyhorse-1.0-r2v takes 1 to 9 reference images, not 0" },
        { { "--model", "edit", "--video", "x.mp4" }, "--prompt is required" },
        /* What only the server's parse of the body sees. */
        { { "--image", "data:image/png;base64,@@@@" },
          "the API would refuse this request: input.media[0].url must be" },
        { { "--image", "data:image/png;base64," },
          "the base64 payload is empty" },
        { { "--image", "http:///x.png" }, "no host after the scheme" },
        { { "--model", "r2v", "--prompt", "p", "--ref", "https://h/a.png",
            "--ref", "https://h/b" },
          NULL },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        j = body_of(&e, bad[i].args[0], bad[i].args[1], bad[i].args[2],
                    bad[i].args[3], bad[i].args[4], bad[i].args[5],
                    bad[i].args[6], bad[i].args[7], NULL);
        if (!bad[i].want) { /* the good one among them */
            CHECK(j != NULL);
            json_decref(j);
            continue;
        }
        CHECK(j == NULL);
        CHECK_INT(e.code, ERR_INVALID_PARAMETER);
        if (!strstr(e.text, bad[i].want))
            fprintf(stderr, "  case %zu: '%s' lacks '%s'\n", i, e.text,
                    bad[i].want);
        CHECK(strstr(e.text, bad[i].want));
        json_decref(j);
    }
    /* Six references for video-edit, one too many (ten for r2v stop at
     * the flag: a task takes at most nine images). */
    j = body_of(&e, "--model", "edit", "--prompt", "p", "--video",
                "https://h/v.mp4", "--ref", "https://h/1", "--ref",
                "https://h/2", "--ref", "https://h/3", "--ref", "https://h/4",
                "--ref", "https://h/5", "--ref", "https://h/6", NULL);
    CHECK(j == NULL && strstr(e.text, "takes 0 to 5 reference images, not "
                                      "6"));
    /* A parameter the kind ignores draws a note, not a refusal. */
    {
        char *argv[] = { "--model", "i2v", "--image",         "https://h/a.png",
                         "--ratio", "1:1", "--audio-setting", "origin" };
        struct cli_opts o;
        char note[512] = "";
        FILE *warn = fmemopen(note, sizeof(note) - 1, "w");
        CHECK_INT(cli_parse(CLI_SUBMIT, 8, argv, &o, &e), 0);
        CHECK_INT(cli_submit_check(&o, warn, &e), 0);
        if (warn)
            fclose(warn);
        CHECK(strstr(note, "ignores --ratio") != NULL);
        CHECK(strstr(note, "ignores --audio-setting") != NULL);
        CHECK(strstr(note, "--duration") == NULL);
    }
    j = body_of(&e, "--image", gif, NULL);
    CHECK(j == NULL && strstr(e.text, "not a JPEG, PNG or WEBP"));
    j = body_of(&e, "--image", big, NULL);
    CHECK(j == NULL && strstr(e.text, "over the 20 MB limit"));
    j = body_of(&e, "--image", dir, NULL);
    CHECK(j == NULL && strstr(e.text, "not a regular file"));

    /* A local video: checked by its first bytes; in a body only as the
     * paddock-upload:// URL it was uploaded as, else the refusal an
     * endpoint other than paddock gets. */
    char mp4[300], url[320];
    snprintf(mp4, sizeof(mp4), "%s/clip.mp4", dir);
    write_file(mp4, "\0\0\0 ftypisom\0\0\2\0", 16);
    struct cli_opts o;
    char *argv[] = { "--prompt", "p", "--video", mp4 };
    CHECK_INT(cli_parse(CLI_SUBMIT, 4, argv, &o, &e), 0);
    CHECK(cli_local_video(&o));
    CHECK_INT(cli_submit_check(&o, NULL, &e), 0);
    struct buf body = BUF_INIT;
    CHECK_INT(cli_submit_body(&o, &body, NULL, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "local video files are accepted by paddock servers "
                         "only"));
    o.video_upload = "paddock-upload://0190f5b2-7c1e-4d2a-9b3c-5e6f7a8b9c0d";
    CHECK_INT(cli_submit_body(&o, &body, NULL, &e), 0);
    j = json_loadb(body.data, body.len, 0, NULL);
    m = json_array_get(json_object_get(json_object_get(j, "input"), "media"),
                       0);
    CHECK_STR(json_string_value(json_object_get(m, "type")), "video");
    CHECK_STR(json_string_value(json_object_get(m, "url")), o.video_upload);
    CHECK_STR(json_string_value(json_object_get(j, "model")),
              "happyhorse-1.0-video-edit");
    json_decref(j);
    buf_fini(&body);
    /* file:// names a local file too. */
    snprintf(url, sizeof(url), "file://%s", mp4);
    argv[3] = url;
    CHECK_INT(cli_parse(CLI_SUBMIT, 4, argv, &o, &e), 0);
    CHECK(cli_local_video(&o));
    CHECK_INT(cli_submit_check(&o, NULL, &e), 0);
    /* An earlier upload's URL, or an http(s) URL, is passed on. */
    j = body_of(&e, "--prompt", "p", "--video",
                "paddock-upload://0190f5b2-7c1e-4d2a-9b3c-5e6f7a8b9c0d", NULL);
    CHECK(j != NULL);
    json_decref(j);
    argv[3] = "https://example.com/v.mp4";
    CHECK_INT(cli_parse(CLI_SUBMIT, 4, argv, &o, &e), 0);
    CHECK(!cli_local_video(&o));
    /* Not a video by its first bytes, or over 100 MB. */
    j = body_of(&e, "--prompt", "p", "--video", png, NULL);
    CHECK(j == NULL && strstr(e.text, "not an MP4 or MOV video"));
    f = fopen(mp4, "r+b");
    if (f) { /* sparse, just over the cap */
        fseek(f, LIMIT_VIDEO_BYTES, SEEK_SET);
        fputc(0, f);
        fclose(f);
    }
    j = body_of(&e, "--prompt", "p", "--video", mp4, NULL);
    CHECK(j == NULL && strstr(e.text, "over the 100 MB limit of a video"));
    unlink(mp4);
    unlink(png);
    unlink(gif);
    unlink(big);
}

static void outputs(void)
{
    struct errmsg e = { 0 };
    char path[300];
    CHECK_INT(cli_check_output("-", &e), 0);
    CHECK_INT(cli_check_output("x.mp4", &e), 0);
    snprintf(path, sizeof(path), "%s/out.mp4", dir);
    CHECK_INT(cli_check_output(path, &e), 0);
    CHECK_INT(cli_check_output(dir, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "is a directory"));
    CHECK_INT(cli_check_output("/nonexistent/dir/x.mp4", &e),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "does not exist"));
    CHECK_INT(cli_check_output("", &e), ERR_INVALID_PARAMETER);
}

static void models(void)
{
    char out[LIMIT_MODEL_NAME + 1];
    struct errmsg e = { 0 };
    CHECK_INT(cli_model("edit", out, &e), 0);
    CHECK_STR(out, "happyhorse-1.0-video-edit");
    CHECK_INT(cli_model("I2V", out, &e), 0);
    CHECK_STR(out, "happyhorse-1.0-i2v");
    CHECK_INT(cli_model("1.1-t2v", out, &e), 0);
    CHECK_STR(out, "happyhorse-1.1-t2v");
    CHECK_INT(cli_model("happyhorse-1.0-r2v", out, &e), 0);
    CHECK_STR(out, "happyhorse-1.0-r2v");
    CHECK_INT(cli_model("other-model", out, &e), 0);
    CHECK_STR(out, "other-model");
    CHECK_INT(cli_model("a/b", out, &e), ERR_INVALID_PARAMETER);
}

static void help_pages(void)
{
    static const char *const cmds[] = { "submit", "get",  "wait",
                                        "cancel", "list", "download" };
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++) {
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        CHECK(cli_is_command(cmds[i]));
        CHECK_INT(cli_help(cmds[i], f), 0);
        fclose(f);
        CHECK(strstr(text, "SYNOPSIS") && strstr(text, "EXIT STATUS") &&
              strstr(text, "EXAMPLES") && strstr(text, "PADDOCK_API_KEY") &&
              strstr(text, "--base-url"));
        free(text);
    }
    CHECK(!cli_is_command("serve"));
    CHECK_INT(cli_help("serve", stdout), 2);
}

int main(void)
{
    unit_suite = "cli";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(parse_flags);
    RUN(parse_errors);
    RUN(endpoint);
    RUN(dialect_guess);
    RUN(durations);
    RUN(video_types);
    RUN(submit_bodies);
    RUN(outputs);
    RUN(models);
    RUN(help_pages);
    rmdir(dir);
    return UNIT_END();
}
