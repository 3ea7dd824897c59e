/* Configuration: one table of options, four sources, later wins. */
#include "conf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum opt_type {
    OPT_STR,      /* char * */
    OPT_LIST,     /* appends to a struct conf_list; max: entries */
    OPT_INT,      /* int in [min, max] */
    OPT_DURATION, /* int64 ms: clock_parse_duration ("24h", "1h30m", "10") */
    OPT_BYTES,    /* int64 bytes: "32M", "64K", bare bytes */
    OPT_OFFSET,   /* int minutes: "+08:00", "-05:30", "8" */
    OPT_LISTEN,   /* "HOST:PORT", "[v6]:PORT" */
};

struct opt {
    const char *key; /* config-file key and flag name (--key) */
    const char *env; /* environment variable */
    enum opt_type type;
    size_t offset; /* into struct conf */
    int64_t min, max;
    const char *def; /* default, as text (NULL: none) */
    const char *arg; /* placeholder in help */
    const char *help;
};

#define OFF(f) offsetof(struct conf, f)

static const struct opt opts[] = {
    { "listen", "PADDOCK_LISTEN", OPT_LISTEN, OFF(listen), 0, 0,
      "127.0.0.1:8080", "HOST:PORT", "address to serve HTTP on (port 0: any)" },
    { "data", "PADDOCK_DATA", OPT_STR, OFF(data_dir), 0, 0, "./paddock-data",
      "DIR", "data directory: database, results/, tmp/" },
    { "store", "PADDOCK_STORE", OPT_STR, OFF(store_url), 0, 0, NULL, "URL",
      "task store (default sqlite:DIR/paddock.db)" },
    { "public-url", "PADDOCK_PUBLIC_URL", OPT_STR, OFF(public_url), 0, 0, NULL,
      "URL", "base of video_url behind a proxy (default: the request's Host)" },
    { "api-key", "PADDOCK_API_KEY", OPT_LIST, OFF(api_keys), 0, LIMIT_KEYS,
      NULL, "KEY",
      "accept this API key (repeatable; none: a key is minted and printed)" },
    { "fetch-allow", "PADDOCK_FETCH_ALLOW", OPT_LIST, OFF(fetch_allow), 0,
      LIMIT_KEYS, NULL, "CIDR",
      "let media fetches reach this private/loopback range (repeatable)" },
    { "workers", "PADDOCK_WORKERS", OPT_INT, OFF(workers), 0, LIMIT_WORKERS,
      NULL, "N", "render threads (default: number of cores; 0: API only)" },
    { "http-threads", "PADDOCK_HTTP_THREADS", OPT_INT, OFF(http_threads), 1, 64,
      NULL, "N", "HTTP polling threads (default: number of cores)" },
    { "retention", "PADDOCK_RETENTION", OPT_DURATION, OFF(retention_ms), 1000,
      INT64_C(365) * 86400000, "24h", "DURATION",
      "how long tasks, videos and links are kept" },
    { "lease", "PADDOCK_LEASE", OPT_DURATION, OFF(lease_ms), 300, 3600000,
      "30s", "DURATION",
      "a worker's hold on a task; renewed while it runs, rescued after" },
    { "max-attempts", "PADDOCK_MAX_ATTEMPTS", OPT_INT, OFF(max_attempts), 1,
      100, "3", "N", "claims of a task before it fails InternalError.Timeout" },
    { "utc-offset", "PADDOCK_UTC_OFFSET", OPT_OFFSET, OFF(utc_offset_min),
      -14 * 60, 14 * 60, "+08:00", "+HH:MM", "time zone of *_time fields" },
    { "body-limit", "PADDOCK_BODY_LIMIT", OPT_BYTES, OFF(body_limit), 1024,
      1LL << 30, "32M", "BYTES", "largest request body (413 above)" },
    { "upload-limit", "PADDOCK_UPLOAD_LIMIT", OPT_BYTES, OFF(upload_limit),
      1024, LIMIT_VIDEO_BYTES, "100M", "BYTES",
      "largest upload, streamed to disk (413 above)" },
    { "body-memory", "PADDOCK_BODY_MEMORY", OPT_BYTES, OFF(body_memory),
      1LL << 20, 1LL << 40, "256M", "BYTES",
      "request bodies held in memory at once (503 above; a key: a quarter)" },
    { "query-cache", "PADDOCK_QUERY_CACHE", OPT_BYTES, OFF(query_cache), 0,
      1LL << 30, "64M", "BYTES",
      "memory for the answers of finished tasks, served without the store "
      "(0: none)" },
    { "metrics-token", "PADDOCK_METRICS_TOKEN", OPT_STR, OFF(metrics_token), 0,
      0, NULL, "TOKEN",
      "/metrics answers to Bearer TOKEN (default: to any API key)" },
    { "log-level", "PADDOCK_LOG_LEVEL", OPT_STR, OFF(log_level), 0, 0, "info",
      "LEVEL", "debug, info, warn or error" },
    { "rate-limit", "PADDOCK_RATE_LIMIT", OPT_INT, OFF(rate_limit), 0, 1000000,
      "0", "N", "requests per second per key (0: no limit); 429 above" },
    { "rate-burst", "PADDOCK_RATE_BURST", OPT_INT, OFF(rate_burst), 1, 1000000,
      "100", "N", "requests a key may send at once before rate-limit applies" },
    { "max-active", "PADDOCK_MAX_ACTIVE", OPT_INT, OFF(max_active), 0,
      100000000, "1000", "N", "unfinished tasks per key (0: none); 429 above" },
    { "max-queue", "PADDOCK_MAX_QUEUE", OPT_INT, OFF(max_queue), 0, 100000000,
      "10000", "N", "pending tasks of all keys (0: none); 429 above" },
    { "deadline", "PADDOCK_DEADLINE", OPT_DURATION, OFF(deadline_ms), 1000,
      INT64_C(7) * 86400000, "10m", "DURATION",
      "an engine run longer than this fails InternalError.Timeout" },
    { "model-deadline", "PADDOCK_MODEL_DEADLINE", OPT_LIST, OFF(model_deadline),
      0, 64, NULL, "MODEL=DURATION", "the deadline of one model (repeatable)" },
    { "models", "PADDOCK_MODELS", OPT_LIST, OFF(models), 0, 64, NULL,
      "MODEL,...",
      "render only these models or aliases (repeatable; default: all)" },
    { "engine", "PADDOCK_ENGINE", OPT_STR, OFF(engine), 0, 0, "sandbox", "SPEC",
      "the engine \"default\": sandbox, command:/abs/program [ARGS], or "
      "upstream:... (docs/engines.md)" },
    { "fetch-timeout", "PADDOCK_FETCH_TIMEOUT", OPT_DURATION,
      OFF(fetch_timeout_ms), 1000, 3600000, "120s", "DURATION",
      "time limit of one input download (images 20 MB, videos 100 MB)" },
    { "webhook-schedule", "PADDOCK_WEBHOOK_SCHEDULE", OPT_STR,
      OFF(webhook_schedule), 0, 0, "5s,5m,30m,2h,5h,10h,10h", "DURATION,...",
      "delays between a webhook's attempts, then it is dead" },
    { "usage-retention", "PADDOCK_USAGE_RETENTION", OPT_DURATION,
      OFF(usage_retention_ms), 86400000, INT64_C(3660) * 86400000, "400d",
      "DURATION",
      "how long usage ledger entries outlive their task (reports, export)" },
    { "grace", "PADDOCK_GRACE", OPT_DURATION, OFF(grace_ms), 0, 3600000, "10s",
      "DURATION",
      "at SIGTERM, time running tasks get before they are given back" },
    { "stream-max", "PADDOCK_STREAM_MAX", OPT_INT, OFF(stream_max), 0,
      LIMIT_CONNECTIONS, "10000", "N",
      "status streams open at once (0: none offered); 503 above" },
    { "stream-max-per-key", "PADDOCK_STREAM_MAX_PER_KEY", OPT_INT,
      OFF(stream_max_per_key), 1, LIMIT_CONNECTIONS, "100", "N",
      "status streams one key may hold open; 429 above" },
    { "stream-keepalive", "PADDOCK_STREAM_KEEPALIVE", OPT_DURATION,
      OFF(stream_keepalive_ms), 100, 300000, "15s", "DURATION",
      "a status stream's keep-alive comment (and re-read) interval" },
};

static int bad(struct errmsg *err, const struct opt *o, const char *value,
               const char *what)
{
    return errmsg_set(err, ERR_INVALID_PARAMETER,
                      "%s: '%.200s' is not valid: expected %s", o->key, value,
                      what);
}

/* A number with an optional unit suffix from `units`. */
static int parse_scaled(const char *s, const char *const *names,
                        const int64_t *scale, size_t n, int64_t dflt,
                        int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return ERR_INVALID_PARAMETER;
    int64_t mul = dflt;
    if (*end) {
        mul = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(end, names[i]) == 0)
                mul = scale[i];
        if (!mul)
            return ERR_INVALID_PARAMETER;
    }
    if (v > INT64_MAX / mul)
        return ERR_INVALID_PARAMETER;
    *out = v * mul;
    return 0;
}

/* A size as the options write it: "1G", "64K", "0". */
static void size_text(int64_t v, char out[24])
{
    static const char units[] = "GMK";
    for (int i = 0; i < 3; i++) {
        int64_t unit = (int64_t)1 << (10 * (3 - i));
        if (v > 0 && v % unit == 0) {
            snprintf(out, 24, "%lld%c", (long long)(v / unit), units[i]);
            return;
        }
    }
    snprintf(out, 24, "%lld", (long long)v);
}

/* A model-deadline entry: "MODEL=DURATION"; *name_len is MODEL's length. */
static int parse_model_deadline(const char *s, size_t *name_len, int64_t *ms)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || (size_t)(eq - s) > LIMIT_MODEL_NAME ||
        clock_parse_duration(eq + 1, 1000, INT64_MAX, ms) < 0)
        return ERR_INVALID_PARAMETER;
    *name_len = (size_t)(eq - s);
    return 0;
}

int64_t conf_model_deadline_ms(const struct conf *c, const char *model)
{
    for (size_t i = 0; i < c->model_deadline.n; i++) {
        size_t n;
        int64_t ms;
        const char *e = c->model_deadline.v[i];
        if (parse_model_deadline(e, &n, &ms) == 0 && strlen(model) == n &&
            strncmp(e, model, n) == 0)
            return ms;
    }
    return 0;
}

static int parse_offset(const char *s, int *out)
{
    int sign = 1, h = 0, m = 0;
    if (strncmp(s, "UTC", 3) == 0)
        s += 3;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > 14)
        return ERR_INVALID_PARAMETER;
    h = (int)v;
    if (*end == ':') {
        const char *ms = end + 1;
        v = strtol(ms, &end, 10);
        if (end != ms + 2 || v < 0 || v > 59)
            return ERR_INVALID_PARAMETER;
        m = (int)v;
    }
    if (*end)
        return ERR_INVALID_PARAMETER;
    *out = sign * (h * 60 + m);
    return 0;
}

static int parse_listen(struct conf *c, const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return ERR_INVALID_PARAMETER;
    int64_t port;
    if (parse_i64(colon + 1, 0, 65535, &port) < 0)
        return ERR_INVALID_PARAMETER;
    const char *h = s;
    size_t hn = (size_t)(colon - s);
    if (h[0] == '[') { /* [v6]:port */
        if (hn < 3 || h[hn - 1] != ']')
            return ERR_INVALID_PARAMETER;
        h++;
        hn -= 2;
    }
    free(c->listen_host);
    c->listen_host = xstrndup(h, hn);
    c->listen_port = (int)port;
    return 0;
}

static int set_opt(struct conf *c, const struct opt *o, const char *value,
                   struct errmsg *err)
{
    void *field = (char *)c + o->offset;
    int64_t v = 0;
    switch (o->type) {
    case OPT_STR:
        if (!value[0])
            return bad(err, o, value, "a non-empty value");
        free(*(char **)field);
        *(char **)field = xstrdup(value);
        return 0;
    case OPT_LIST: {
        struct conf_list *l = field;
        if (!value[0] || strlen(value) > LIMIT_KEY_BYTES)
            return bad(err, o, value, "a value of 1 to 256 characters");
        if (l->n >= (size_t)o->max)
            return bad(err, o, value, "at most 1024 entries");
        l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
        l->v[l->n++] = xstrdup(value);
        return 0;
    }
    case OPT_INT:
        if (parse_i64(value, o->min, o->max, &v) < 0) {
            char what[64];
            snprintf(what, sizeof(what), "an integer from %lld to %lld",
                     (long long)o->min, (long long)o->max);
            return bad(err, o, value, what);
        }
        *(int *)field = (int)v;
        return 0;
    case OPT_DURATION: {
        if (clock_parse_duration(value, o->min, o->max, &v) < 0)
            return bad(err, o, value,
                       "a duration like 500ms, 30s, 15m, 24h, in range");
        *(int64_t *)field = v;
        return 0;
    }
    case OPT_BYTES: {
        static const char *const u[] = { "K", "M", "G", "KiB", "MiB", "GiB" };
        static const int64_t k[] = { 1 << 10, 1 << 20, 1 << 30,
                                     1 << 10, 1 << 20, 1 << 30 };
        if (parse_scaled(value, u, k, ARRAY_LEN(u), 1, &v) < 0 || v < o->min ||
            v > o->max) {
            char lo[24], hi[24], what[80];
            size_text(o->min, lo);
            size_text(o->max, hi);
            snprintf(what, sizeof(what), "a size like 64K or 32M, %s to %s", lo,
                     hi);
            return bad(err, o, value, what);
        }
        *(int64_t *)field = v;
        return 0;
    }
    case OPT_OFFSET: {
        int m;
        if (parse_offset(value, &m) < 0)
            return bad(err, o, value, "an offset like +08:00 or -05:30");
        *(int *)field = m;
        return 0;
    }
    case OPT_LISTEN:
        if (parse_listen(c, value) < 0)
            return bad(err, o, value, "HOST:PORT, e.g. 127.0.0.1:8080");
        free(c->listen);
        c->listen = xstrdup(value);
        return 0;
    }
    return ERR_INTERNAL;
}

static const struct opt *find_opt(const char *key, size_t n)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++)
        if (strlen(opts[i].key) == n && strncmp(opts[i].key, key, n) == 0)
            return &opts[i];
    return NULL;
}

/* A model-routing key ("engine.gpu", "model.happyhorse-1.0-t2v", ...):
 * kept as "KEY=VALUE" for route/, which checks it. */
static bool route_key(const char *key, size_t n)
{
    static const char *const prefixes[] = { "engine.", "model.", "alias.",
                                            "price." };
    for (size_t i = 0; i < ARRAY_LEN(prefixes); i++) {
        size_t k = strlen(prefixes[i]);
        if (n > k && strncmp(key, prefixes[i], k) == 0)
            return true;
    }
    return false;
}

int conf_parse_amount(const char *s, int64_t max_micro, int64_t *out)
{
    int64_t units = 0, frac = 0;
    int digits = 0, decimals = 0;
    const char *p = s;
    if (max_micro <= 0)
        max_micro = (int64_t)LIMIT_PRICE_UNITS * 1000000;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        units = units * 10 + (*p - '0');
        if (units > max_micro / 1000000 + 1)
            return ERR_INVALID_PARAMETER;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, decimals++) {
            if (decimals == 6)
                return ERR_INVALID_PARAMETER;
            frac = frac * 10 + (*p - '0');
        }
        if (decimals == 0)
            return ERR_INVALID_PARAMETER;
    }
    if (*p || digits == 0)
        return ERR_INVALID_PARAMETER;
    for (int i = decimals; i < 6; i++)
        frac *= 10;
    int64_t v = units * 1000000 + frac;
    if (v > max_micro)
        return ERR_INVALID_PARAMETER;
    *out = v;
    return 0;
}

int64_t conf_price(const struct conf *c, const char *model, int resolution)
{
    for (size_t i = 0; i < c->n_prices; i++)
        if (c->prices[i].resolution == resolution &&
            strcmp(c->prices[i].model, model) == 0)
            return c->prices[i].micro;
    return 0;
}

/* "price.MODEL.RESOLUTION" = AMOUNT (the model's name may hold dots: the
 * resolution is after the last one). A later line for the same pair wins. */
static int add_price(struct conf *c, const char *key, size_t n,
                     const char *value, struct errmsg *err)
{
    const size_t pre = sizeof("price.") - 1;
    const char *dot = NULL;
    for (const char *p = key + pre; p < key + n; p++)
        if (*p == '.')
            dot = p;
    int res = 0;
    if (dot && key + n - dot == 5 && strncasecmp(dot + 1, "480P", 4) == 0)
        res = 480;
    else if (dot && key + n - dot == 5 && strncasecmp(dot + 1, "720P", 4) == 0)
        res = 720;
    else if (dot && key + n - dot == 6 && strncasecmp(dot + 1, "1080P", 5) == 0)
        res = 1080;
    size_t model_n = dot ? (size_t)(dot - key - pre) : 0;
    if (!res || model_n == 0 || model_n > LIMIT_MODEL_NAME)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%.*s: expected price.MODEL.RESOLUTION with "
                          "RESOLUTION 480P, 720P or 1080P",
                          (int)(n < 128 ? n : 128), key);
    int64_t micro;
    if (conf_parse_amount(value, 0, &micro) < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%.*s: '%.40s' is not a price: expected an amount "
                          "per second from 0 to %d with at most 6 decimals "
                          "(0.14)",
                          (int)(n < 128 ? n : 128), key, value,
                          LIMIT_PRICE_UNITS);
    if (c->n_prices >= LIMIT_ROUTES)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%.*s: more than %d price lines",
                          (int)(n < 128 ? n : 128), key, LIMIT_ROUTES);
    c->prices = xrealloc(c->prices, (c->n_prices + 1) * sizeof(*c->prices));
    struct conf_price *pr = &c->prices[c->n_prices++];
    snprintf(pr->model, sizeof(pr->model), "%.*s", (int)model_n, key + pre);
    pr->resolution = res;
    pr->micro = micro;
    /* A later line replaces an earlier one: the earlier goes. */
    for (size_t i = 0; i + 1 < c->n_prices; i++)
        if (c->prices[i].resolution == res &&
            strcmp(c->prices[i].model, pr->model) == 0) {
            c->prices[i] = *pr;
            c->n_prices--;
            break;
        }
    return 0;
}

static int add_route(struct conf *c, const char *key, size_t n,
                     const char *value, struct errmsg *err)
{
    if (strncmp(key, "price.", 6) == 0)
        return add_price(c, key, n, value, err);
    if (n > 128 || !value[0] || strlen(value) > LIMIT_CONFIG_BYTES / 4)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%.*s: expected a non-empty value (key at most 128 "
                          "characters)",
                          (int)(n < 128 ? n : 128), key);
    if (c->routes.n >= LIMIT_ROUTES)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%.*s: more than %d routing lines", (int)n, key,
                          LIMIT_ROUTES);
    c->routes.v = xrealloc(c->routes.v, (c->routes.n + 1) * sizeof(char *));
    c->routes.v[c->routes.n++] = xasprintf("%.*s=%s", (int)n, key, value);
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int load_file(struct conf *c, const char *path, struct errmsg *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "cannot read config file %s: %s", path,
                          strerror(errno));
    char line[4096];
    int lineno = 0, ret = 0;
    long total = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        total += (long)strlen(line);
        if (total > (long)LIMIT_CONFIG_BYTES) {
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "%s is larger than %u bytes", path,
                             LIMIT_CONFIG_BYTES);
            break;
        }
        char *s = trim(line);
        size_t n = strlen(s);
        if (n && s[n - 1] == '\n')
            s[--n] = '\0';
        else if (!feof(f)) {
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "%s:%d: a line may be at most %zu bytes", path,
                             lineno, sizeof(line) - 2);
            break;
        }
        /* A comment: '#' first on the line or after a space or tab. */
        for (char *p = s; *p; p++)
            if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
                *p = '\0';
                break;
            }
        s = trim(s);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "%s:%d: expected 'key = value'", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (route_key(key, strlen(key))) {
            if ((ret = add_route(c, key, strlen(key), value, err)) < 0) {
                char detail[LIMIT_ERRMSG];
                snprintf(detail, sizeof(detail), "%s", err->text);
                errmsg_set(err, ret, "%s:%d: %s", path, lineno, detail);
                break;
            }
            continue;
        }
        for (char *p = key; *p; p++)
            if (*p == '_')
                *p = '-';
        const struct opt *o = find_opt(key, strlen(key));
        if (!o) {
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "%s:%d: unknown option '%s'", path, lineno, key);
            break;
        }
        ret = set_opt(c, o, value, err);
        if (ret < 0) {
            char detail[LIMIT_ERRMSG];
            snprintf(detail, sizeof(detail), "%s", err->text);
            errmsg_set(err, ret, "%s:%d: %s", path, lineno, detail);
            break;
        }
    }
    fclose(f);
    return ret;
}

static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* --key VALUE or --key=VALUE; *i advances past what was used. */
static int flag(int argc, char **argv, int *i, const struct opt **o,
                const char **value, struct errmsg *err)
{
    const char *a = argv[*i];
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    *o = find_opt(name, n);
    if (strncmp(a, "--", 2) != 0 || !*o)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "unknown option '%s' (see paddock serve --help)", a);
    if (eq) {
        *value = eq + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        return errmsg_set(err, ERR_INVALID_PARAMETER, "option --%s needs %s",
                          (*o)->key, (*o)->arg);
    }
    return 0;
}

/* --engine.NAME=SPEC, --model.MODEL NAME, ...: 1 when argv[*i] was one
 * (*i advanced), 0 when it is not a routing flag, or an error. */
static int route_flag(struct conf *c, int argc, char **argv, int *i,
                      struct errmsg *err)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0)
        return 0;
    const char *key = a + 2, *eq = strchr(key, '=');
    size_t n = eq ? (size_t)(eq - key) : strlen(key);
    if (!route_key(key, n))
        return 0;
    const char *value;
    if (eq)
        value = eq + 1;
    else if (*i + 1 < argc)
        value = argv[++*i];
    else
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "option --%.*s needs a value",
                          (int)(n < 128 ? n : 128), key);
    int ret = add_route(c, key, n, value, err);
    return ret < 0 ? ret : 1;
}

static int cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int conf_load(struct conf *c, int argc, char **argv, char **envp, bool *help,
              struct errmsg *err)
{
    int ret = 0;
    const char *config = env_get(envp, "PADDOCK_CONFIG");
    memset(c, 0, sizeof(*c));
    *help = false;
    c->workers = c->http_threads = cores();
    for (size_t i = 0; i < ARRAY_LEN(opts); i++)
        if (opts[i].def && (ret = set_opt(c, &opts[i], opts[i].def, err)) < 0)
            return ret;

    /* --config and --help first: the file sits under env and flags. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = true;
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
    }
    if (config && (ret = load_file(c, config, err)) < 0)
        return ret;

    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const char *v = env_get(envp, opts[i].env);
        if (v && (ret = set_opt(c, &opts[i], v, err)) < 0)
            return errmsg_set(err, ret, "%s: %.400s", opts[i].env,
                              errmsg_text(err));
    }

    for (int i = 0; i < argc; i++) {
        const struct opt *o = NULL;
        const char *v = NULL;
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0)
            continue;
        if ((ret = route_flag(c, argc, argv, &i, err)) != 0) {
            if (ret < 0)
                return ret;
            continue;
        }
        if ((ret = flag(argc, argv, &i, &o, &v, err)) < 0)
            return ret;
        if ((ret = set_opt(c, o, v, err)) < 0)
            return ret;
    }

    if (!c->store_url)
        c->store_url = xasprintf("sqlite:%s/paddock.db", c->data_dir);
    for (size_t i = 0; i < c->model_deadline.n; i++) {
        size_t n;
        int64_t ms;
        if (parse_model_deadline(c->model_deadline.v[i], &n, &ms) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "model-deadline: '%.200s' is not valid: "
                              "expected MODEL=DURATION, like "
                              "happyhorse-1.0-t2v=20m (at least 1s)",
                              c->model_deadline.v[i]);
    }
    if (c->public_url) { /* "http://h:p/" and "http://h:p" alike */
        size_t n = strlen(c->public_url);
        while (n && c->public_url[n - 1] == '/')
            c->public_url[--n] = '\0';
        if (strncmp(c->public_url, "http://", 7) != 0 &&
            strncmp(c->public_url, "https://", 8) != 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "public-url: '%.200s' is not valid: expected "
                              "http://HOST[:PORT] or https://...",
                              c->public_url);
    }
    return 0;
}

static void list_fini(struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

void conf_fini(struct conf *c)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        void *field = (char *)c + opts[i].offset;
        if (opts[i].type == OPT_STR || opts[i].type == OPT_LISTEN)
            free(*(char **)field);
        else if (opts[i].type == OPT_LIST)
            list_fini(field);
    }
    free(c->listen_host);
    list_fini(&c->routes); /* file lines, not an option */
    free(c->prices);
    memset(c, 0, sizeof(*c));
}

void conf_usage(FILE *out)
{
    fprintf(out, "Options (flag / environment / config-file key):\n");
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const struct opt *o = &opts[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", o->key, o->arg);
        fprintf(out, "  %-28s %s\n", left, o->help);
        fprintf(out, "  %-28s env %s", "", o->env);
        if (o->def)
            fprintf(out, ", default %s", o->def);
        fprintf(out, "\n");
    }
    fprintf(out, "  %-28s %s\n", "--config FILE",
            "read 'key = value' lines (keys as the flags, no dashes "
            "before)");
    fprintf(out, "  %-28s env PADDOCK_CONFIG\n", "");
    fprintf(out,
            "\nModel routing (flags or config-file lines; docs/config.md):\n"
            "  --engine.NAME SPEC           an engine instance "
            "(sandbox | command:... | upstream:...)\n"
            "  --engine.NAME.concurrency N  its runs at once per process\n"
            "  --engine.NAME.deadline DUR   its runs' time limit\n"
            "  --model.MODEL NAME           serve MODEL with engine NAME "
            "(then only listed models)\n"
            "  --alias.ALIAS MODEL          accept ALIAS as MODEL\n");
}
