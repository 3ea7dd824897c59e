/*
 * Unit tests of src/route: which routes take paddock-upload:// inputs
 * (route_accepts_uploads: the answer of the engine behind the route, for an
 * alias too) and the engine deadline in the one duration syntax. Engines
 * are made for real; the relay points at a port nothing listens on.
 */
#include "../../src/net/net.h"
#include "../../src/route/route.h"
#include "unit.h"

static int table(char **argv, struct conf *c, struct route_table **t,
                 struct errmsg *e)
{
    char *envp[] = { NULL };
    int argc = 0;
    bool help;
    while (argv[argc])
        argc++;
    *t = NULL;
    int rc = conf_load(c, argc, argv, envp, &help, e);
    if (rc == 0)
        rc = route_table_new(c, t, e);
    return rc;
}

static void uploads_follow_the_engine(void)
{
    char *argv[] = { "--engine.relay",
                     "upstream:dashscope http://127.0.0.1:9 key=k",
                     "--engine.gpu",
                     "command:/bin/true",
                     "--model.happyhorse-1.0-video-edit",
                     "default",
                     "--model.happyhorse-1.0-i2v",
                     "gpu",
                     "--model.happyhorse-1.0-r2v",
                     "relay",
                     "--alias.wan-edit",
                     "happyhorse-1.0-video-edit",
                     "--alias.wan-r2v",
                     "happyhorse-1.0-r2v",
                     NULL };
    struct conf c;
    struct route_table *t = NULL;
    struct errmsg e = { 0 };
    CHECK_INT(table(argv, &c, &t, &e), 0);
    if (!t) {
        fprintf(stderr, "  %s\n", e.text);
        conf_fini(&c);
        return;
    }
    static const struct {
        const char *name, *backend;
        bool uploads;
    } want[] = {
        { "happyhorse-1.0-video-edit", "sandbox", true },
        { "wan-edit", "sandbox", true },
        { "happyhorse-1.0-i2v", "command", true },
        { "happyhorse-1.0-r2v", "upstream", false },
        { "wan-r2v", "upstream", false },
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        const struct route *r = route_find(t, want[i].name);
        CHECK(r != NULL);
        if (!r)
            continue;
        CHECK_STR(route_engine_backend(r->engine), want[i].backend);
        CHECK(route_accepts_uploads(r) == want[i].uploads);
    }
    route_table_free(t);
    conf_fini(&c);
}

static void engine_deadline_durations(void)
{
    static const struct {
        const char *value;
        int64_t ms; /* 0: refused */
    } cases[] = {
        { "90", 90000 },     { "20m", 1200000 }, { "1h30m", 5400000 },
        { "7d", 604800000 }, { "999ms", 0 },     { "8d", 0 },
        { "soon", 0 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *argv[] = { "--engine.default.deadline", (char *)cases[i].value,
                         NULL };
        struct conf c;
        struct route_table *t = NULL;
        struct errmsg e = { 0 };
        int rc = table(argv, &c, &t, &e);
        if (cases[i].ms) {
            CHECK_INT(rc, 0);
            const struct route *r =
                t ? route_find(t, "happyhorse-1.0-t2v") : NULL;
            CHECK(r != NULL);
            if (r)
                CHECK_INT(route_deadline_ms(t, r), cases[i].ms);
        } else {
            CHECK_INT(rc, ERR_INVALID_PARAMETER);
            CHECK(strstr(e.text, "1s to 7d") != NULL);
        }
        route_table_free(t);
        conf_fini(&c);
    }
}

int main(void)
{
    unit_suite = "route";
    struct errmsg e = { 0 };
    if (net_global_init(&e) < 0) {
        fprintf(stderr, "net_global_init: %s\n", e.text);
        return 1;
    }
    RUN(uploads_follow_the_engine);
    RUN(engine_deadline_durations);
    return UNIT_END();
}
