/* Unit tests of src/conf: defaults, file < environment < flags, errors. */
#include "../../src/conf/conf.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-test-conf-XXXXXX";

static int load(struct conf *c, char **argv, char **envp, struct errmsg *e)
{
    int argc = 0;
    bool help;
    while (argv[argc])
        argc++;
    return conf_load(c, argc, argv, envp, &help, e);
}

static void defaults(void)
{
    struct conf c;
    struct errmsg e = { 0 };
    char *argv[] = { NULL }, *envp[] = { NULL };
    CHECK_INT(load(&c, argv, envp, &e), 0);
    CHECK_STR(c.listen_host, "127.0.0.1");
    CHECK_INT(c.listen_port, 8080);
    CHECK_STR(c.data_dir, "./paddock-data");
    CHECK_STR(c.store_url, "sqlite:./paddock-data/paddock.db");
    CHECK_INT(c.retention_ms, 86400000);
    CHECK_INT(c.utc_offset_min, 480);
    CHECK_INT(c.body_limit, 32 << 20);
    CHECK_INT(c.max_attempts, 3);
    CHECK(c.workers >= 1 && c.http_threads >= 1);
    CHECK(c.public_url == NULL && c.api_keys.n == 0);
    conf_fini(&c);
}

static void precedence(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/paddock.conf", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "# comment\nlisten = 0.0.0.0:9000\nworkers = 3 # three\n"
               "api_key = from-file\t# a comment after a tab\n"
               "models = happyhorse-1.0-t2v,alias#1\nretention = 2h\n"
               "public-url = https://videos.example.com/\n");
    fclose(f);
    char cfg[320];
    snprintf(cfg, sizeof(cfg), "PADDOCK_CONFIG=%s", path);
    char *envp[] = { cfg, "PADDOCK_WORKERS=5", "PADDOCK_API_KEY=from-env",
                     "PADDOCK_UTC_OFFSET=-05:30", NULL };
    char *argv[] = { "--workers", "7",    "--listen=[::1]:0",
                     "--api-key", "flag", NULL };
    struct conf c;
    struct errmsg e = { 0 };
    CHECK_INT(load(&c, argv, envp, &e), 0);
    CHECK_INT(c.workers, 7);
    CHECK_STR(c.listen_host, "::1");
    CHECK_INT(c.listen_port, 0);
    CHECK_INT(c.retention_ms, 2 * 3600000);
    CHECK_INT(c.utc_offset_min, -330);
    CHECK_STR(c.public_url, "https://videos.example.com");
    CHECK_INT(c.api_keys.n, 3);
    if (c.api_keys.n == 3) {
        CHECK_STR(c.api_keys.v[0], "from-file");
        CHECK_STR(c.api_keys.v[1], "from-env");
        CHECK_STR(c.api_keys.v[2], "flag");
    }
    /* '#' inside a value is kept; after a space it starts a comment. */
    CHECK_INT(c.models.n, 1);
    if (c.models.n == 1)
        CHECK_STR(c.models.v[0], "happyhorse-1.0-t2v,alias#1");
    conf_fini(&c);
}

static void bad_values_named(void)
{
    struct {
        char *argv[3];
        const char *fragment;
    } rows[] = {
        { { "--workers", "x" }, "workers" },
        { { "--workers", "100000" }, "workers" },
        { { "--listen", "8080" }, "listen" },
        { { "--listen", "h:99999" }, "listen" },
        { { "--retention", "soon" }, "retention" },
        { { "--utc-offset", "+25:00" }, "utc-offset" },
        { { "--body-limit", "12Q" }, "body-limit" },
        { { "--public-url", "ftp://x" }, "public-url" },
        { { "--no-such", "1" }, "unknown option" },
        { { "--workers" }, "needs" },
        { { "--config", "/nonexistent/paddock.conf" }, "cannot read" },
        { { "--model-deadline", "20m" }, "MODEL=DURATION" },
        { { "--model-deadline", "m=0s" }, "MODEL=DURATION" },
        { { "--deadline", "0" }, "deadline" },
        { { "--rate-limit", "-1" }, "rate-limit" },
        { { "--max-queue", "many" }, "max-queue" },
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct conf c;
        struct errmsg e = { 0 };
        char *envp[] = { NULL };
        CHECK_INT(load(&c, rows[i].argv, envp, &e), ERR_INVALID_PARAMETER);
        if (!strstr(e.text, rows[i].fragment))
            fprintf(stderr, "  row %zu: '%s' lacks '%s'\n", i, e.text,
                    rows[i].fragment);
        CHECK(strstr(e.text, rows[i].fragment) != NULL);
        conf_fini(&c);
    }
    char path[300];
    snprintf(path, sizeof(path), "%s/bad.conf", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "workers = 2\nflavour = vanilla\n");
    fclose(f);
    char *argv[] = { "--config", path, NULL }, *envp[] = { NULL };
    struct conf c;
    struct errmsg e = { 0 };
    CHECK_INT(load(&c, argv, envp, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "bad.conf:2") && strstr(e.text, "flavour"));
    conf_fini(&c);
    /* A line too long for the reader is refused, not split in two. */
    f = fopen(path, "w");
    fprintf(f, "workers = 2\npublic-url = https://");
    for (int i = 0; i < 5000; i++)
        fputc('a', f);
    fprintf(f, "\n");
    fclose(f);
    CHECK_INT(load(&c, argv, envp, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "bad.conf:2: a line may be at most") != NULL);
    conf_fini(&c);
}

/* Engine deadlines: one default, per-model overrides. */
/* price.MODEL.RESOLUTION lines: exact micro-units, the last one wins, a
 * bad line names its file, line and the form. */
static void prices(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/prices.conf", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "price.happyhorse-1.0-t2v.720P = 0.14\n"
               "price.happyhorse-1.0-t2v.480p = 0.000001\n"
               "price.happyhorse-1.1-video-edit.1080P = 12\n"
               "price.happyhorse-1.0-t2v.720P = 0.123456\n");
    fclose(f);
    char *argv[] = { "--config", path, "--price.happyhorse-1.0-i2v.480P",
                     "1000000", NULL };
    char *envp[] = { NULL };
    struct conf c;
    struct errmsg e = { 0 };
    CHECK_INT(load(&c, argv, envp, &e), 0);
    CHECK_INT(c.n_prices, 4);
    CHECK_INT(conf_price(&c, "happyhorse-1.0-t2v", 720), 123456);
    CHECK_INT(conf_price(&c, "happyhorse-1.0-t2v", 480), 1);
    CHECK_INT(conf_price(&c, "happyhorse-1.0-t2v", 1080), 0);
    CHECK_INT(conf_price(&c, "happyhorse-1.1-video-edit", 1080), 12000000);
    CHECK_INT(conf_price(&c, "happyhorse-1.0-i2v", 480), 1000000000000LL);
    CHECK_INT(c.usage_retention_ms, 400 * 86400000LL);
    conf_fini(&c);

    static const struct {
        const char *line, *fragment;
    } bad[] = {
        { "price.happyhorse-1.0-t2v.720P = 0.1234567", "at most 6 decimals" },
        { "price.happyhorse-1.0-t2v.720P = -1", "not a price" },
        { "price.happyhorse-1.0-t2v.720P = 1e3", "not a price" },
        { "price.happyhorse-1.0-t2v.720P = 1000000.000001", "not a price" },
        { "price.happyhorse-1.0-t2v.720P = .5", "not a price" },
        { "price.happyhorse-1.0-t2v.4K = 1", "RESOLUTION 480P" },
        { "price.720P = 1", "price.MODEL.RESOLUTION" },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        f = fopen(path, "w");
        fprintf(f, "workers = 2\n%s\n", bad[i].line);
        fclose(f);
        char *a[] = { "--config", path, NULL };
        memset(&e, 0, sizeof(e));
        CHECK_INT(load(&c, a, envp, &e), ERR_INVALID_PARAMETER);
        CHECK(strstr(e.text, ":2: ") != NULL);
        CHECK(strstr(e.text, bad[i].fragment) != NULL);
        conf_fini(&c);
    }
    int64_t v = 0;
    CHECK_INT(conf_parse_amount("0.5", 0, &v), 0);
    CHECK_INT(v, 500000);
    CHECK_INT(conf_parse_amount("12", 20000000, &v), 0);
    CHECK_INT(v, 12000000);
    CHECK_INT(conf_parse_amount("21", 20000000, &v), ERR_INVALID_PARAMETER);
    CHECK_INT(conf_parse_amount("", 0, &v), ERR_INVALID_PARAMETER);
    CHECK_INT(conf_parse_amount("1.", 0, &v), ERR_INVALID_PARAMETER);
    CHECK_INT(conf_parse_amount("99999999999999999999", 0, &v),
              ERR_INVALID_PARAMETER);
}

static void deadlines(void)
{
    char *argv[] = { "--deadline",
                     "90s",
                     "--model-deadline",
                     "happyhorse-1.0-r2v=20m",
                     "--model-deadline",
                     "happyhorse-1.0-t2v=1h",
                     NULL };
    char *envp[] = { NULL };
    struct conf c;
    struct errmsg e = { 0 };
    CHECK_INT(load(&c, argv, envp, &e), 0);
    CHECK_INT(conf_model_deadline_ms(&c, "happyhorse-1.0-t2v"), 3600000);
    CHECK_INT(conf_model_deadline_ms(&c, "happyhorse-1.0-r2v"), 1200000);
    CHECK_INT(conf_model_deadline_ms(&c, "happyhorse-1.0-i2v"), 0);
    CHECK_INT(conf_model_deadline_ms(&c, "happyhorse-1.0-t2"), 0);
    CHECK_INT(c.deadline_ms, 90000);
    conf_fini(&c);
    char *none[] = { NULL };
    CHECK_INT(load(&c, none, envp, &e), 0);
    CHECK_INT(conf_model_deadline_ms(&c, "happyhorse-1.0-t2v"), 0);
    CHECK_INT(c.deadline_ms, 600000);
    CHECK_INT(c.grace_ms, 10000);
    CHECK_INT(c.max_active, 1000);
    CHECK_INT(c.max_queue, 10000);
    CHECK_INT(c.rate_limit, 0);
    conf_fini(&c);
}

int main(void)
{
    unit_suite = "conf";
    if (!mkdtemp(dir))
        return 1;
    RUN(defaults);
    RUN(precedence);
    RUN(bad_values_named);
    RUN(deadlines);
    RUN(prices);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_END();
}
