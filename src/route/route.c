/* Model routing: names to engines, engine health, run slots. */
#include "route.h"

#include "../log/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the health thread checks every engine. */
#define HEALTH_EVERY_MS   5000
#define ROUTE_ENGINES_MAX 32
#define ROUTE_ROUTES_MAX  64

struct route_engine {
    char name[ROUTE_NAME_MAX + 1];
    char *spec;
    struct engine *engine;
    int concurrency;     /* 0: no cap */
    int64_t deadline_ms; /* 0: the conf deadline */
    /* Other engine.NAME.KEY = VALUE lines, "KEY=VALUE", for the engine
     * itself (engine_configure). */
    char *opts[ROUTE_ENGINE_OPTS];
    size_t n_opts;

    pthread_mutex_t lock; /* guards running, healthy, why */
    int running; /* tasks this process holds for it (the worker's count) */
    bool healthy;
    char why[LIMIT_ERRMSG];
};

struct route_table {
    const struct conf *conf;
    struct route_engine engines[ROUTE_ENGINES_MAX];
    size_t n_engines;
    struct route routes[ROUTE_ROUTES_MAX];
    size_t n_routes;
    struct task_catalog catalog;

    pthread_t health;
    bool health_started;
    pthread_mutex_t lock; /* guards quit */
    pthread_cond_t wake;
    bool quit;
    atomic_bool stopping; /* set with quit: a check under way gives up */
};

/* ------------------------------------------------------------ lookups */

const struct route *route_find(const struct route_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_routes; i++)
        if (strcmp(t->routes[i].name, name) == 0)
            return &t->routes[i];
    return NULL;
}

const struct route *route_at(const struct route_table *t, size_t i)
{
    return i < t->n_routes ? &t->routes[i] : NULL;
}

size_t route_count(const struct route_table *t)
{
    return t->n_routes;
}

static const struct task_model *catalog_find(const void *arg, const char *name)
{
    const struct route *r = route_find(arg, name);
    return r ? &r->model : NULL;
}

static size_t catalog_names(const void *arg, const char **out, size_t max)
{
    const struct route_table *t = arg;
    size_t n = 0;
    for (; n < t->n_routes && n < max; n++)
        out[n] = t->routes[n].name;
    return n;
}

const struct task_catalog *route_catalog(const struct route_table *t)
{
    return &t->catalog;
}

const char *route_engine_name(const struct route_engine *re)
{
    return re->name;
}

const char *route_engine_backend(const struct route_engine *re)
{
    return engine_name(re->engine);
}

struct engine *route_engine_get(const struct route_engine *re)
{
    return re->engine;
}

int route_engine_concurrency(const struct route_engine *re)
{
    return re->concurrency;
}

int64_t route_deadline_ms(const struct route_table *t, const struct route *r)
{
    int64_t ms = conf_model_deadline_ms(t->conf, r->model.name);
    if (!ms)
        ms = r->engine->deadline_ms;
    return ms ? ms : t->conf->deadline_ms;
}

/* ------------------------------------------------------------- health */

bool route_accepts_uploads(const struct route *r)
{
    return engine_local_media(r->engine->engine);
}

bool route_usable(const struct route *r, struct errmsg *err)
{
    struct route_engine *re = r->engine;
    pthread_mutex_lock(&re->lock);
    bool ok = re->healthy;
    if (!ok)
        errmsg_set(err, ERR_MODEL_UNAVAILABLE, "model %s is unavailable: %s",
                   r->name, re->why);
    pthread_mutex_unlock(&re->lock);
    return ok;
}

static void check_one(const struct route_table *t, struct route_engine *re)
{
    struct errmsg e = { 0 };
    /* A node that renders nothing cannot judge a check of the render
     * hosts' own disks: it leaves those engines available. */
    if (t->conf->workers == 0 && engine_host_check(re->engine))
        return;
    int rc = engine_check(re->engine, &t->stopping, &e);
    if (atomic_load(&t->stopping)) /* cut short: says nothing */
        return;
    pthread_mutex_lock(&re->lock);
    bool was = re->healthy;
    re->healthy = rc == 0;
    snprintf(re->why, sizeof(re->why), "%s", rc == 0 ? "" : errmsg_text(&e));
    pthread_mutex_unlock(&re->lock);
    if (was && rc < 0)
        log_warn("engine down", "engine=%s reason=\"%s\"", re->name,
                 errmsg_text(&e));
    else if (!was && rc == 0)
        log_info("engine up", "engine=%s", re->name);
}

void route_check_now(struct route_table *t)
{
    for (size_t i = 0; i < t->n_engines; i++)
        check_one(t, &t->engines[i]);
}

int route_check_host(struct route_table *t, struct errmsg *err)
{
    for (size_t i = 0; i < t->n_engines; i++) {
        struct route_engine *re = &t->engines[i];
        struct errmsg e = { 0 };
        if (engine_host_check(re->engine) &&
            engine_check(re->engine, NULL, &e) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER, "engine.%s: %s",
                              re->name, errmsg_text(&e));
    }
    return 0;
}

static void *health_main(void *arg)
{
    struct route_table *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->quit) {
        struct timespec ts = clock_mono_after(HEALTH_EVERY_MS);
        while (!t->quit &&
               pthread_cond_timedwait(&t->wake, &t->lock, &ts) != ETIMEDOUT)
            ;
        if (t->quit)
            break;
        pthread_mutex_unlock(&t->lock);
        route_check_now(t);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* ------------------------------------------------------------ capacity */

int route_engine_capacity(const struct route_engine *re)
{
    return engine_capacity(re->engine, re->concurrency);
}

bool route_engine_room(struct route_engine *re)
{
    int cap = route_engine_capacity(re);
    pthread_mutex_lock(&re->lock);
    bool room = cap < 0 || re->running < cap;
    pthread_mutex_unlock(&re->lock);
    return room;
}

void route_engine_take(struct route_engine *re)
{
    pthread_mutex_lock(&re->lock);
    re->running++;
    pthread_mutex_unlock(&re->lock);
}

void route_engine_give(struct route_engine *re)
{
    pthread_mutex_lock(&re->lock);
    re->running--;
    pthread_mutex_unlock(&re->lock);
}

int route_engine_running(struct route_engine *re)
{
    pthread_mutex_lock(&re->lock);
    int n = re->running;
    pthread_mutex_unlock(&re->lock);
    return n;
}

size_t route_engine_count(const struct route_table *t)
{
    return t->n_engines;
}

struct route_engine *route_engine_at(struct route_table *t, size_t i)
{
    return i < t->n_engines ? &t->engines[i] : NULL;
}

/* -------------------------------------------------------------- build */

static struct route_engine *engine_named(struct route_table *t,
                                         const char *name, size_t n)
{
    for (size_t i = 0; i < t->n_engines; i++)
        if (strlen(t->engines[i].name) == n &&
            strncmp(t->engines[i].name, name, n) == 0)
            return &t->engines[i];
    return NULL;
}

static bool valid_name(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

static struct route_engine *engine_add(struct route_table *t, const char *name,
                                       size_t n, struct errmsg *err)
{
    struct route_engine *re = engine_named(t, name, n);
    if (re)
        return re;
    if (!valid_name(name, n, ROUTE_NAME_MAX) || memchr(name, '.', n)) {
        errmsg_set(err, ERR_INVALID_PARAMETER,
                   "engine.%.*s: an engine name is 1 to %d letters, digits, "
                   "'-' or '_'",
                   (int)(n < 80 ? n : 80), name, ROUTE_NAME_MAX);
        return NULL;
    }
    if (t->n_engines == ROUTE_ENGINES_MAX) {
        errmsg_set(err, ERR_INVALID_PARAMETER, "more than %d engines",
                   ROUTE_ENGINES_MAX);
        return NULL;
    }
    re = &t->engines[t->n_engines++];
    memcpy(re->name, name, n);
    re->name[n] = '\0';
    re->healthy = true;
    pthread_mutex_init(&re->lock, NULL);
    return re;
}

/* "engine.NAME=SPEC", "engine.NAME.OPTION=VALUE". */
static int engine_line(struct route_table *t, const char *key,
                       const char *value, struct errmsg *err)
{
    const char *name = key + strlen("engine.");
    const char *dot = strchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    struct route_engine *re = engine_add(t, name, n, err);
    if (!re)
        return err->code;
    if (!dot) {
        free(re->spec);
        re->spec = xstrdup(value);
        return 0;
    }
    const char *opt = dot + 1;
    if (strcmp(opt, "concurrency") == 0) {
        int64_t v;
        if (parse_i64(value, 0, LIMIT_WORKERS, &v) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: '%.100s' is not valid: expected an integer "
                              "from 0 (no cap) to %d",
                              key, value, LIMIT_WORKERS);
        re->concurrency = (int)v;
        return 0;
    }
    if (strcmp(opt, "deadline") == 0) {
        int64_t ms;
        if (clock_parse_duration(value, 1000, INT64_C(7) * 86400000, &ms) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: '%.100s' is not valid: expected a duration "
                              "like 90s, 20m or 2h (1s to 7d)",
                              key, value);
        re->deadline_ms = ms;
        return 0;
    }
    /* The engine's own (a resident engine's start-timeout, grace); it
     * refuses what it does not know once it is made. */
    if (re->n_opts == ROUTE_ENGINE_OPTS)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%.200s: more than %d options for one engine", key,
                          ROUTE_ENGINE_OPTS);
    re->opts[re->n_opts++] = xasprintf("%s=%s", opt, value);
    return 0;
}

static struct route *route_add(struct route_table *t, const char *name,
                               struct errmsg *err)
{
    if (route_find(t, name)) {
        errmsg_set(err, ERR_INVALID_PARAMETER, "model %.80s is routed twice",
                   name);
        return NULL;
    }
    if (t->n_routes == ROUTE_ROUTES_MAX) {
        errmsg_set(err, ERR_INVALID_PARAMETER, "more than %d model names",
                   ROUTE_ROUTES_MAX);
        return NULL;
    }
    struct route *r = &t->routes[t->n_routes++];
    snprintf(r->name, sizeof(r->name), "%s", name);
    return r;
}

static int known_models(char *out, size_t cap)
{
    size_t n;
    const struct task_model *m = task_models(&n);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int w =
            snprintf(out + used, cap - used, "%s%s", i ? ", " : "", m[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return 0;
}

static int bad_model(const char *key, const char *model, struct errmsg *err)
{
    char list[LIMIT_ERRMSG / 2];
    known_models(list, sizeof(list));
    return errmsg_set(err, ERR_INVALID_PARAMETER,
                      "%.100s: '%.80s' is not a HappyHorse model (known: %s)",
                      key, model, list);
}

/* "model.MODEL=ENGINE" lines, then the default routes. */
static int model_lines(struct route_table *t, const struct conf *c,
                       struct errmsg *err)
{
    bool any = false;
    for (size_t i = 0; i < c->routes.n; i++) {
        const char *line = c->routes.v[i];
        if (strncmp(line, "model.", 6) != 0)
            continue;
        const char *eq = strchr(line, '=');
        char key[160];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - line), line);
        const char *name = key + 6, *value = eq + 1;
        const struct task_model *m = task_model_find(name);
        if (!m)
            return bad_model(key, name, err);
        struct route_engine *re = engine_named(t, value, strlen(value));
        if (!re)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: no engine named '%.60s' (define it with "
                              "engine.%.60s = SPEC)",
                              key, value, value);
        struct route *r = route_add(t, name, err);
        if (!r)
            return err->code;
        r->model = *m;
        r->engine = re;
        any = true;
    }
    if (any)
        return 0;
    size_t n;
    const struct task_model *m = task_models(&n);
    struct route_engine *def = engine_named(t, "default", 7);
    for (size_t i = 0; i < n; i++) {
        struct route *r = route_add(t, m[i].name, err);
        if (!r)
            return err->code;
        r->model = m[i];
        r->engine = def;
    }
    return 0;
}

static int alias_lines(struct route_table *t, const struct conf *c,
                       struct errmsg *err)
{
    for (size_t i = 0; i < c->routes.n; i++) {
        const char *line = c->routes.v[i];
        if (strncmp(line, "alias.", 6) != 0)
            continue;
        const char *eq = strchr(line, '=');
        char key[160];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - line), line);
        const char *name = key + 6, *value = eq + 1;
        if (!valid_name(name, strlen(name), LIMIT_MODEL_NAME))
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: an alias is 1 to %d letters, digits, '-', "
                              "'_' or '.'",
                              key, LIMIT_MODEL_NAME);
        const struct route *target = route_find(t, value);
        if (!target || target->alias) {
            if (!task_model_find(value))
                return bad_model(key, value, err);
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: model %.80s is not served (no model.%.80s "
                              "line)",
                              key, value, value);
        }
        struct route_engine *re = target->engine;
        struct task_model m = target->model;
        struct route *r = route_add(t, name, err);
        if (!r)
            return err->code;
        r->model = m;
        r->engine = re;
        r->alias = true;
    }
    return 0;
}

int route_table_new(const struct conf *c, struct route_table **out,
                    struct errmsg *err)
{
    struct route_table *t = xcalloc(1, sizeof(*t));
    int ret = 0;
    t->conf = c;
    clock_cond_init(&t->wake);
    atomic_init(&t->stopping, false);
    pthread_mutex_init(&t->lock, NULL);
    t->catalog = (struct task_catalog){ .find = catalog_find,
                                        .names = catalog_names,
                                        .arg = t };

    struct route_engine *def = engine_add(t, "default", 7, err);
    def->spec = xstrdup(c->engine ? c->engine : "sandbox");
    for (size_t i = 0; i < c->routes.n && ret == 0; i++) {
        const char *line = c->routes.v[i];
        if (strncmp(line, "engine.", 7) != 0)
            continue;
        const char *eq = strchr(line, '=');
        char key[160];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - line), line);
        ret = engine_line(t, key, eq + 1, err);
    }
    for (size_t i = 0; i < t->n_engines && ret == 0; i++) {
        struct route_engine *re = &t->engines[i];
        if (!re->spec) {
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "engine.%s has options but no spec (add "
                             "engine.%s = sandbox | command:... | "
                             "upstream:...)",
                             re->name, re->name);
            break;
        }
        struct errmsg e = { 0 };
        if (engine_new(re->spec, &re->engine, &e) < 0 ||
            engine_configure(re->engine, re->concurrency,
                             (const char *const *)re->opts, re->n_opts, &e) < 0)
            ret = errmsg_set(err, ERR_INVALID_PARAMETER, "engine.%s: %s",
                             re->name, errmsg_text(&e));
    }
    if (ret == 0)
        ret = model_lines(t, c, err);
    if (ret == 0)
        ret = alias_lines(t, c, err);
    if (ret < 0) {
        route_table_free(t);
        return ret;
    }
    route_check_now(t);
    if (pthread_create(&t->health, NULL, health_main, t) == 0)
        t->health_started = true;
    *out = t;
    return 0;
}

void route_table_free(struct route_table *t)
{
    if (!t)
        return;
    if (t->health_started) {
        pthread_mutex_lock(&t->lock);
        t->quit = true;
        atomic_store(&t->stopping, true);
        pthread_cond_broadcast(&t->wake);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->health, NULL);
    }
    for (size_t i = 0; i < t->n_engines; i++) {
        struct route_engine *re = &t->engines[i];
        engine_free(re->engine);
        free(re->spec);
        for (size_t k = 0; k < re->n_opts; k++)
            free(re->opts[k]);
        pthread_mutex_destroy(&re->lock);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t);
}
