/* paddock: the HappyHorse video-generation API, self-hosted. */
#include "api/api.h"
#include "auth/auth.h"
#include "blob/blob.h"
#include "cli/cli.h"
#include "conf/conf.h"
#include "core/core.h"
#include "engine/engine.h"
#include "hook/hook.h"
#include "route/route.h"
#include "http/http.h"
#include "log/log.h"
#include "net/net.h"
#include "store/store.h"
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define PADDOCK_VERSION "0.1.0"

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out,
            "paddock %s: the HappyHorse video-generation API, self-hosted\n"
            "\n"
            "Usage: paddock <command> [options]\n"
            "\n"
            "Commands:\n"
            "  serve      serve the API (both dialects) with workers and the\n"
            "             configured engines; see paddock serve --help\n"
            "  worker     render tasks of a shared store, no HTTP; see "
            "paddock worker --help\n"
            "  keys       create, list and revoke API keys; see paddock keys "
            "help\n"
            "  models     print the model table of a configuration (which "
            "engine\n"
            "             serves which model name, and whether it is up)\n"
            "  version    print the version\n"
            "  help       this text\n"
            "\n"
            "Client commands, for any HappyHorse endpoint (paddock, TTAPI,\n"
            "DashScope); see paddock help <command>:\n"
            "  submit     create a video-generation task (--wait -o FILE: "
            "all the way)\n"
            "  get        show one task\n"
            "  wait       wait for a task to finish, with a live status line\n"
            "  cancel     cancel a pending task\n"
            "  list       list your tasks\n"
            "  download   download the video of a finished task\n"
            "\n"
            "With no options, paddock serve listens on 127.0.0.1:8080, keeps\n"
            "its data in ./paddock-data/, and on first start prints a new\n"
            "API key once.\n",
            PADDOCK_VERSION);
}

static void serve_usage(FILE *out)
{
    fprintf(out, "Usage: paddock serve [options]\n\n"
                 "Serves the HappyHorse API: DashScope dialect under /api/v1, "
                 "TTAPI dialect\nunder /happyhorse/api/v1, result files under "
                 "/files.\n\n");
    conf_usage(out);
}

static void worker_usage(FILE *out)
{
    fprintf(out, "Usage: paddock worker [options]\n\n"
                 "Claims and renders tasks of a shared store, without "
                 "serving HTTP: a\nrender host beside API nodes "
                 "(paddock serve --workers 0). Give it the\nsame --store "
                 "and a --data directory shared with the API nodes (their\n"
                 "result files are served from there). The HTTP options "
                 "are ignored.\n\n");
    conf_usage(out);
}

/* mkdir -p for the data directory. */
static int make_dirs(const char *path, struct errmsg *err)
{
    char *p = xstrdup(path);
    int ret = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            ret = errmsg_set(err, ERR_IO, "cannot create directory %s: %s", p,
                             strerror(errno));
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return ret;
}

/*
 * The data directory holds the URL-signing key (in paddock.db), API key
 * hashes and every result: only this user may read it, whatever the
 * umask. New files are made 0600 and directories 0700 (umask 077 for the
 * server's commands), and a directory made by an older release is
 * narrowed to 0700 (docs/config.md, "Files and permissions").
 */
static int private_data_dir(const char *path, struct errmsg *err)
{
    umask(077);
    int ret = make_dirs(path, err);
    if (ret == 0 && chmod(path, 0700) < 0)
        ret = errmsg_set(err, ERR_IO, "cannot make %s private (chmod 0700): %s",
                         path, strerror(errno));
    return ret;
}

/* Keys from the configuration; with none anywhere, mint one and show it
 * once (only its hash is kept). */
static int setup_keys(const struct conf *conf, struct store *store,
                      struct auth *auth, struct errmsg *err)
{
    for (size_t i = 0; i < conf->api_keys.n; i++)
        if (auth_add_plain(auth, conf->api_keys.v[i]) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "api-key #%zu is empty or too long", i + 1);
    int ret = auth_reload(auth, store);
    if (ret < 0)
        return errmsg_set(err, ret, "cannot read API keys from the store");
    if (auth_count(auth) > 0)
        return 0;
    struct store_key rec;
    char secret[AUTH_SECRET_MAX];
    if ((ret = auth_key_mint("default", &rec, secret)) < 0 ||
        (ret = store_key_put(store, &rec)) < 0 ||
        (ret = auth_reload(auth, store)) < 0)
        return errmsg_set(err, ret, "cannot create the first API key");
    printf("paddock: created an API key; it is shown only this once:\n"
           "  %s\n",
           secret);
    fflush(stdout);
    return 0;
}

/* A render thread's task ended: the API (once it exists: the pool starts
 * first) keeps the answer. arg: an _Atomic(struct api *). */
static void task_finished(void *arg, const char *task_id)
{
    struct api *api = atomic_load((_Atomic(struct api *) *)arg);
    if (api)
        api_task_finished(api, task_id);
}

/* serve (API + workers) and worker (workers only: a render host of a
 * shared store) share everything but the HTTP side. */
static int cmd_serve(int argc, char **argv, bool with_api)
{
    struct conf conf;
    struct errmsg err = { 0 };
    struct store *store = NULL;
    struct blob *blob = NULL;
    struct auth *auth = NULL;
    struct route_table *routes = NULL;
    struct net_allow *allow = NULL;
    struct worker_pool *workers = NULL;
    struct http_server *http = NULL;
    struct api *api = NULL;
    struct hook *hook = NULL;
    struct hook_schedule schedule;
    char hook_owner[300];
    _Atomic(struct api *) finish_api = NULL; /* api, for task_finished */
    char *listen_base = NULL;
    int ret = 1;
    bool help;
    unsigned char sign_key[32];
    enum log_level level;
    int64_t grace_ms = 0;

    if (conf_load(&conf, argc, argv, environ, &help, &err) < 0)
        goto out;
    if (help) {
        if (with_api)
            serve_usage(stdout);
        else
            worker_usage(stdout);
        ret = 0;
        goto out;
    }
    for (size_t i = 0; i < conf.n_prices; i++)
        if (!task_model_find(conf.prices[i].model)) {
            errmsg_set(&err, ERR_INVALID_PARAMETER,
                       "price.%s.%dP: %s is not a model (a price names one "
                       "of the HappyHorse models, not an alias)",
                       conf.prices[i].model, conf.prices[i].resolution,
                       conf.prices[i].model);
            goto out;
        }
    if (!with_api && conf.workers == 0) {
        errmsg_set(&err, ERR_INVALID_PARAMETER,
                   "workers: a worker process needs at least 1 render "
                   "thread (--workers N)");
        goto out;
    }
    if (log_level_parse(conf.log_level, &level) < 0) {
        errmsg_set(&err, ERR_INVALID_PARAMETER,
                   "log-level: '%s' is not valid: expected debug, info, "
                   "warn or error",
                   conf.log_level);
        goto out;
    }
    log_set_level(level);
    if (hook_schedule_parse(conf.webhook_schedule, &schedule, &err) < 0)
        goto out;

    /* Every idle keep-alive connection is a descriptor: take all the
     * system allows this process. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
        nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }

    /* The command engine waits for its children: they must not be reaped
     * behind its back, whatever disposition we were started with. */
    signal(SIGCHLD, SIG_DFL);

    /* Signals go to the main thread's sigwait, never to a worker or an
     * HTTP thread: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* One line per request, not one write(2) each (its flusher thread
     * starts with the signals blocked). */
    log_buffer_start();

    if (net_global_init(&err) < 0)
        goto out;
    if (net_allow_new((const char *const *)conf.fetch_allow.v,
                      conf.fetch_allow.n, &allow, &err) < 0) {
        char why[LIMIT_ERRMSG];
        snprintf(why, sizeof(why), "%s", errmsg_text(&err));
        errmsg_set(&err, err.code, "fetch-allow: %s", why);
        goto out;
    }
    if (private_data_dir(conf.data_dir, &err) < 0 ||
        store_open(conf.store_url, &store, &err) < 0)
        goto out;
    if (store_secret(store, "url-signing", sign_key) < 0) {
        errmsg_set(&err, ERR_STORE, "cannot read the URL signing key");
        goto out;
    }
    if (blob_open(conf.data_dir, sign_key, &blob, &err) < 0)
        goto out;
    if (route_table_new(&conf, &routes, &err) < 0 ||
        (conf.workers > 0 && route_check_host(routes, &err) < 0))
        goto out;
    if (!with_api) {
        struct worker_deps wd = { .conf = &conf,
                                  .store = store,
                                  .blob = blob,
                                  .routes = routes,
                                  .allow = allow };
        if (worker_start(&wd, &workers, &err) < 0)
            goto out;
        printf("paddock: worker running %d render threads on %s\n",
               conf.workers, store_name(store));
        fflush(stdout);
        log_info("working", "data=%s store=%s workers=%d models=%zu owner=%s",
                 conf.data_dir, store_name(store), conf.workers,
                 route_count(routes), worker_owner(workers));
        goto wait;
    }
    auth = auth_new();
    if (setup_keys(&conf, store, auth, &err) < 0)
        goto out;

    struct http_opts hopts = {
        .host = conf.listen_host,
        .port = conf.listen_port,
        .threads = conf.http_threads,
        .body_limit = conf.body_limit,
        .body_memory = conf.body_memory,
        .tenant_share = conf.body_memory / 4 > conf.body_limit
                            ? conf.body_memory / 4
                            : conf.body_limit,
        .conn_timeout_s = LIMIT_CONN_TIMEOUT_S,
    };
    if (http_listen(&hopts, &http, &err) < 0)
        goto out;
    bool v6 = strchr(conf.listen_host, ':') != NULL;
    listen_base = xasprintf(v6 ? "http://[%s]:%d" : "http://%s:%d",
                            conf.listen_host, http_port(http));

    struct worker_deps wdeps = {
        .conf = &conf,
        .store = store,
        .blob = blob,
        .routes = routes,
        .allow = allow,
        .on_finish = task_finished,
        .on_finish_arg = &finish_api,
    };
    if (worker_start(&wdeps, &workers, &err) < 0)
        goto out;
    struct api_deps adeps = {
        .conf = &conf,
        .store = store,
        .auth = auth,
        .blob = blob,
        .listen_base = listen_base,
        .routes = routes,
        .on_submit = worker_notify,
        .on_submit_arg = workers,
    };
    api = api_new(&adeps);
    atomic_store(&finish_api, api);
    if (http_serve(http, api_admit, api_handle, api, &err) < 0)
        goto out;
    /* Webhook deliveries leave from API nodes (docs/extensions.md). */
    char host[256] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(hook_owner, sizeof(hook_owner), "hooks@%.200s.%ld", host,
             (long)getpid());
    struct hook_deps hdeps = {
        .store = store,
        .blob = blob,
        .url_base = conf.public_url ? conf.public_url : listen_base,
        .utc_offset_min = conf.utc_offset_min,
        .allow = allow,
        .schedule = schedule,
        .owner = hook_owner,
    };
    if (hook_start(&hdeps, &hook, &err) < 0)
        goto out;

    printf("paddock: listening on %s\n", listen_base);
    fflush(stdout);
    log_info("serving",
             "listen=%s data=%s store=%s workers=%d "
             "http_threads=%d models=%zu",
             listen_base, conf.data_dir, store_name(store), conf.workers,
             conf.http_threads, route_count(routes));

    /* Wait for a signal; meanwhile reread the keys each second, so a key
     * revoked by `paddock keys revoke` (on any node) stops working within
     * a second. */
wait:;
    int sig;
    struct timespec tick = { .tv_sec = 1 };
    while ((sig = sigtimedwait(&sigs, NULL, &tick)) < 0) {
        if (errno == EAGAIN && auth && auth_reload(auth, store) < 0)
            log_warn("cannot reload API keys", "store=%s", store_name(store));
    }
    log_info("shutting down", "signal=%d grace_ms=%lld", sig,
             (long long)conf.grace_ms);
    grace_ms = conf.grace_ms;
    ret = 0;
out:
    if (err.code) {
        log_flush(); /* the lines before it come first */
        fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
    }
    /* No new requests; those in progress finish. */
    if (!http_stop(http)) {
        /* A handler may still run: free nothing it uses. Every task that
         * was acknowledged is already in the store. */
        log_flush();
        fprintf(stderr, "paddock: exiting with requests in flight\n");
        fflush(NULL);
        _exit(1);
    }
    /* Deliveries in flight end unsettled: their lease brings them back. */
    hook_stop(hook);
    /* Running tasks get the grace period, then go back to PENDING. */
    worker_stop(workers, grace_ms);
    api_free(api);
    route_table_free(routes);
    auth_free(auth);
    blob_free(blob);
    store_close(store);
    net_allow_free(allow);
    net_global_fini();
    free(listen_base);
    conf_fini(&conf);
    log_buffer_stop(); /* every line out before the exit status */
    return ret;
}

static void keys_usage(FILE *out)
{
    fprintf(out,
            "Usage: paddock keys create [--name NAME] [--scenario SCENARIO] "
            "[--admin] [options]\n"
            "       paddock keys list [options]\n"
            "       paddock keys revoke [options] KEY_ID\n"
            "       paddock keys set KEY_ID [--name NAME] [--scenario S] "
            "[--admin|--no-admin]\n"
            "                [--quota seconds=N/day|amount=X/month|none] "
            "[--balance X|none]\n"
            "                [--revoked] [options]\n"
            "\n"
            "Manage the API keys kept in the store (salted hashes only). "
            "create prints\nthe new key once; revoke takes effect on every "
            "node within a second.\nOptions: --data DIR, --store URL, "
            "--config FILE (as for paddock serve).\n"
            "--scenario gives the key a default sandbox scenario (a comma "
            "list of\ndirectives, docs/testing-your-client.md): every task "
            "it submits to a\nsandbox model behaves so unless the request "
            "says otherwise.\n"
            "--admin makes a key that may use the keys API (POST, GET, "
            "PATCH, DELETE\n/api/v1/keys) and read every key's usage "
            "(docs/extensions.md, \"Usage\").\n");
}

static int keys_create(struct store *store, const char *name,
                       const char *scenario, bool admin)
{
    struct store_key rec;
    char secret[AUTH_SECRET_MAX];
    if (auth_key_mint(name, &rec, secret) < 0) {
        fprintf(stderr, "paddock: cannot create the key\n");
        return 1;
    }
    snprintf(rec.scenario, sizeof(rec.scenario), "%s", scenario);
    rec.admin = admin;
    rec.balance = -1;
    rec.balance_set = true;
    if (store_key_put(store, &rec) < 0) {
        fprintf(stderr, "paddock: cannot create the key\n");
        return 1;
    }
    printf("%s\n", secret);
    fprintf(stderr,
            "paddock: created %skey %s%s%s; the secret above is shown only "
            "this once\n",
            admin ? "admin " : "", rec.key_id, name[0] ? " named " : "", name);
    return 0;
}

static int keys_list(struct store *store, const struct conf *conf)
{
    struct store_key *keys;
    size_t n;
    if (store_key_list(store, &keys, &n) < 0) {
        fprintf(stderr, "paddock: cannot read the keys\n");
        return 1;
    }
    printf("%-14s %-24s %-23s %-31s %s\n", "KEY_ID", "NAME", "CREATED",
           "STATUS", "SCENARIO");
    for (size_t i = 0; i < n; i++) {
        char created[24], revoked[24];
        clock_format(keys[i].created_ms, conf->utc_offset_min, created);
        clock_format(keys[i].revoked_ms, conf->utc_offset_min, revoked);
        char status[40];
        snprintf(status, sizeof(status), "%s%s%s",
                 keys[i].revoked_ms ? "revoked " : "active",
                 keys[i].revoked_ms ? revoked : "",
                 keys[i].admin ? " admin" : "");
        printf("%-14s %-24s %-23s %-31s %s\n", keys[i].key_id,
               keys[i].name[0] ? keys[i].name : "-", created, status,
               keys[i].scenario[0] ? keys[i].scenario : "-");
    }
    free(keys);
    return 0;
}

static int keys_revoke(struct store *store, const char *key_id)
{
    struct store_key *keys;
    size_t n;
    int ret = 1;
    if (store_key_list(store, &keys, &n) < 0) {
        fprintf(stderr, "paddock: cannot read the keys\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].key_id, key_id) != 0)
            continue;
        if (!keys[i].revoked_ms) {
            keys[i].revoked_ms = clock_now_ms();
            if (store_key_put(store, &keys[i]) < 0) {
                fprintf(stderr, "paddock: cannot revoke %s\n", key_id);
                goto out;
            }
        }
        fprintf(stderr, "paddock: key %s is revoked\n", key_id);
        ret = 0;
        goto out;
    }
    fprintf(stderr,
            "paddock: no key %s in the store (see paddock keys list); keys "
            "given by --api-key are removed from the configuration\n",
            key_id);
out:
    free(keys);
    return ret;
}

/* `keys set` values: what to change (NULL / false: unchanged). */
struct keys_set {
    const char *name, *scenario, *quota, *balance;
    bool revoked, admin, no_admin;
};

/* --quota seconds=N/day|amount=X/month|none into *k; false (said on
 * stderr) when it is not that. */
static bool parse_quota_flag(const char *v, struct store_key *k)
{
    const char *eq = strchr(v, '='), *slash = strrchr(v, '/');
    char num[40];
    if (strcmp(v, "none") == 0) {
        k->quota = STORE_QUOTA_NONE;
        k->quota_limit = 0;
        return true;
    }
    bool sec = strncmp(v, "seconds=", 8) == 0;
    bool amt = strncmp(v, "amount=", 7) == 0;
    int64_t n = 0;
    if ((sec || amt) && slash && slash > eq &&
        (size_t)(slash - eq - 1) < sizeof(num) &&
        (strcmp(slash, "/day") == 0 || strcmp(slash, "/month") == 0)) {
        snprintf(num, sizeof(num), "%.*s", (int)(slash - eq - 1), eq + 1);
        bool ok = sec ? parse_i64(num, 1, LIMIT_QUOTA / 100, &n) == 0
                      : conf_parse_amount(num, LIMIT_QUOTA, &n) == 0;
        if (ok) {
            k->quota = sec ? STORE_QUOTA_SECONDS : STORE_QUOTA_AMOUNT;
            k->quota_limit = sec ? n * 100 : n;
            k->period = strcmp(slash, "/month") == 0 ? STORE_PERIOD_MONTH
                                                     : STORE_PERIOD_DAY;
            return true;
        }
    }
    fprintf(stderr,
            "paddock: --quota: expected seconds=N/day, seconds=N/month, "
            "amount=X/day, amount=X/month (X with at most 6 decimals) or "
            "none, got '%s'\n",
            v);
    return false;
}

/* Change a key record in the local store (as create, list and revoke:
 * from a shell on a node; the keys API does the same over HTTP). */
static int keys_set(struct store *store, const char *key_id,
                    const struct keys_set *set)
{
    struct store_key *keys = NULL;
    size_t n = 0;
    int ret = 1;
    if (store_key_list(store, &keys, &n) < 0) {
        fprintf(stderr, "paddock: cannot read the keys\n");
        return 1;
    }
    struct store_key *k = NULL;
    for (size_t i = 0; i < n && !k; i++)
        if (strcmp(keys[i].key_id, key_id) == 0)
            k = &keys[i];
    if (!k) {
        fprintf(stderr,
                "paddock: no key %s in the store (see paddock keys "
                "list)\n",
                key_id);
        goto out;
    }
    k->balance_set = false;
    if (set->name)
        snprintf(k->name, sizeof(k->name), "%s", set->name);
    if (set->scenario)
        snprintf(k->scenario, sizeof(k->scenario), "%s", set->scenario);
    if (set->admin || set->no_admin)
        k->admin = set->admin;
    if (set->quota && !parse_quota_flag(set->quota, k)) {
        ret = 2;
        goto out;
    }
    if (set->balance) {
        k->balance_set = true;
        if (strcmp(set->balance, "none") == 0) {
            k->balance = -1;
        } else if (conf_parse_amount(set->balance, LIMIT_QUOTA, &k->balance) <
                   0) {
            fprintf(stderr, "paddock: --balance: expected an amount with at "
                            "most 6 decimals, or none\n");
            ret = 2;
            goto out;
        }
    }
    if (set->revoked && !k->revoked_ms)
        k->revoked_ms = clock_now_ms();
    if (store_key_put(store, k) < 0) {
        fprintf(stderr, "paddock: cannot change %s\n", key_id);
        goto out;
    }
    fprintf(stderr,
            "paddock: key %s changed; every node sees it within a "
            "second\n",
            key_id);
    ret = 0;
out:
    free(keys);
    return ret;
}

static int cmd_keys(int argc, char **argv)
{
    struct conf conf;
    struct errmsg err = { 0 };
    struct store *store = NULL;
    const char *verb = argc > 0 ? argv[0] : "";
    const char *name = "", *target = NULL, *scenario = "";
    char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
    int n_rest = 0, ret = 2;
    bool help = false, admin = false;
    struct keys_set set = { 0 };

    /* Options and the one positional (revoke's KEY_ID) in any order:
     * every option but --help takes a value, as "--opt V" or "--opt=V". */
    int extra = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strncmp(a, "--name=", 7) == 0) {
            name = a + 7;
        } else if (strcmp(a, "--scenario") == 0 && i + 1 < argc) {
            scenario = argv[++i];
        } else if (strncmp(a, "--scenario=", 11) == 0) {
            scenario = a + 11;
        } else if (strcmp(a, "--admin") == 0) {
            admin = set.admin = true;
        } else if (strcmp(a, "--no-admin") == 0) {
            set.no_admin = true;
        } else if (strcmp(a, "--revoked") == 0) {
            set.revoked = true;
        } else if (strcmp(a, "--quota") == 0 && i + 1 < argc) {
            set.quota = argv[++i];
        } else if (strcmp(a, "--balance") == 0 && i + 1 < argc) {
            set.balance = argv[++i];
        } else if (a[0] != '-') {
            if (target)
                extra++;
            target = a;
        } else {
            rest[n_rest++] = argv[i];
            bool valued = strncmp(a, "--", 2) == 0 && !strchr(a, '=') &&
                          strcmp(a, "--help") != 0;
            if (valued && i + 1 < argc)
                rest[n_rest++] = argv[++i];
        }
    }
    if (extra) {
        fprintf(stderr, "paddock: keys %s takes at most one KEY_ID\n", verb);
        free(rest);
        return 2;
    }
    if (strcmp(verb, "help") == 0 || strcmp(verb, "--help") == 0 ||
        strcmp(verb, "-h") == 0) {
        keys_usage(stdout);
        free(rest);
        return 0;
    }
    if (conf_load(&conf, n_rest, rest, environ, &help, &err) < 0) {
        fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
        free(rest);
        return 2;
    }
    if (help) {
        keys_usage(stdout);
        ret = 0;
        goto out;
    }
    bool create = strcmp(verb, "create") == 0;
    bool list = strcmp(verb, "list") == 0;
    bool revoke = strcmp(verb, "revoke") == 0;
    bool change = strcmp(verb, "set") == 0;
    if (!(create || list || revoke || change) ||
        ((revoke || change) != (target != NULL)) ||
        strlen(name) >= sizeof(((struct store_key *)0)->name)) {
        keys_usage(stderr);
        goto out;
    }
    if (scenario[0]) {
        struct task_scenario sc = { 0 };
        if (!create && !change) {
            fprintf(stderr, "paddock: --scenario is for keys create and set\n");
            goto out;
        }
        if (task_scenario_parse(&sc, scenario, strlen(scenario), "--scenario",
                                &err) < 0) {
            fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
            goto out;
        }
    }
    ret = 1;
    if (private_data_dir(conf.data_dir, &err) < 0 ||
        store_open(conf.store_url, &store, &err) < 0) {
        fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
        goto out;
    }
    if (create)
        ret = keys_create(store, name, scenario, admin);
    else if (list)
        ret = keys_list(store, &conf);
    else if (change) {
        set.name = name[0] ? name : NULL;
        set.scenario = scenario[0] ? scenario : NULL;
        ret = keys_set(store, target, &set);
    } else
        ret = keys_revoke(store, target);
out:
    store_close(store);
    conf_fini(&conf);
    free(rest);
    return ret;
}

static void models_usage(FILE *out)
{
    fprintf(out,
            "Usage: paddock models [options]\n\n"
            "Prints the model table this configuration serves: every name a\n"
            "client may send (models and aliases), the model it means, the\n"
            "engine that runs it, that engine's run cap and deadline, and\n"
            "whether the engine passes its check now (an upstream answers\n"
            "and takes the key; a command's program is executable).\n"
            "Takes the options of paddock serve (--config FILE, "
            "--engine.NAME, --model.MODEL, --alias.ALIAS ...).\n"
            "Exit status: 0 when every engine is up, 1 when one is down,\n"
            "2 for a bad configuration.\n");
}

static int cmd_models(int argc, char **argv)
{
    struct conf conf;
    struct errmsg err = { 0 };
    struct route_table *routes = NULL;
    bool help = false;
    int ret = 2;
    if (conf_load(&conf, argc, argv, environ, &help, &err) < 0)
        goto out;
    if (help) {
        models_usage(stdout);
        ret = 0;
        goto out;
    }
    log_set_level(LOG_ERROR);
    if (net_global_init(&err) < 0 || route_table_new(&conf, &routes, &err) < 0)
        goto out;
    ret = 0;
    printf("%-28s %-26s %-10s %-12s %-9s %-5s %-8s %s\n", "NAME", "MODEL",
           "TASK", "ENGINE", "BACKEND", "RUNS", "DEADLINE", "STATUS");
    for (size_t i = 0; i < route_count(routes); i++) {
        const struct route *r = route_at(routes, i);
        struct errmsg why = { 0 };
        bool up = route_usable(r, &why);
        char runs[16], deadline[24];
        int cap = route_engine_capacity(r->engine);
        snprintf(runs, sizeof(runs), cap >= 0 ? "%d" : "-", cap);
        clock_format_duration(route_deadline_ms(routes, r), deadline);
        printf("%-28s %-26s %-10s %-12s %-9s %-5s %-8s %s\n", r->name,
               r->model.name, task_kind_name(r->model.kind),
               route_engine_name(r->engine), route_engine_backend(r->engine),
               runs, deadline, up ? "available" : errmsg_text(&why));
        if (!up)
            ret = 1;
    }
out:
    if (err.code)
        fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
    route_table_free(routes);
    net_global_fini();
    conf_fini(&conf);
    return ret;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "help";
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2, true);
    if (strcmp(cmd, "worker") == 0)
        return cmd_serve(argc - 2, argv + 2, false);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc - 2, argv + 2);
    if (strcmp(cmd, "models") == 0)
        return cmd_models(argc - 2, argv + 2);
    if (cli_is_command(cmd))
        return cli_run(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("paddock %s\n", PADDOCK_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        const char *topic = argc > 2 ? argv[2] : "";
        if (strcmp(topic, "serve") == 0)
            serve_usage(stdout);
        else if (strcmp(topic, "worker") == 0)
            worker_usage(stdout);
        else if (strcmp(topic, "models") == 0)
            models_usage(stdout);
        else if (strcmp(topic, "keys") == 0) {
            char *verb[] = { "help", NULL };
            return cmd_keys(1, verb);
        } else if (argc > 2 && cli_is_command(argv[2]))
            cli_help(argv[2], stdout);
        else
            usage(stdout);
        return 0;
    }
    fprintf(stderr, "paddock: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
