/* paddock: the HappyHorse video-generation API, self-hosted. */
#include "api/api.h"
#include "auth/auth.h"
#include "blob/blob.h"
#include "conf/conf.h"
#include "core/core.h"
#include "engine/engine.h"
#include "http/http.h"
#include "log/log.h"
#include "store/store.h"
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
            "             sandbox engine; see paddock serve --help\n"
            "  version    print the version\n"
            "  help       this text\n"
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

static int cmd_serve(int argc, char **argv)
{
    struct conf conf;
    struct errmsg err = { 0 };
    struct store *store = NULL;
    struct blob *blob = NULL;
    struct auth *auth = NULL;
    struct engine *engine = NULL;
    struct worker_pool *workers = NULL;
    struct http_server *http = NULL;
    struct api *api = NULL;
    char *listen_base = NULL;
    int ret = 1;
    bool help;
    unsigned char sign_key[32];
    enum log_level level;

    if (conf_load(&conf, argc, argv, environ, &help, &err) < 0)
        goto out;
    if (help) {
        serve_usage(stdout);
        ret = 0;
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

    /* Signals go to the main thread's sigwait, never to a worker or an
     * HTTP thread: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (make_dirs(conf.data_dir, &err) < 0 ||
        store_open(conf.store_url, &store, &err) < 0)
        goto out;
    if (store_secret(store, "url-signing", sign_key) < 0) {
        errmsg_set(&err, ERR_STORE, "cannot read the URL signing key");
        goto out;
    }
    if (blob_open(conf.data_dir, sign_key, &blob, &err) < 0)
        goto out;
    auth = auth_new();
    if (setup_keys(&conf, store, auth, &err) < 0 ||
        engine_new("sandbox", &engine, &err) < 0)
        goto out;

    struct http_opts hopts = {
        .host = conf.listen_host,
        .port = conf.listen_port,
        .threads = conf.http_threads,
        .body_limit = conf.body_limit,
        .conn_timeout_s = LIMIT_CONN_TIMEOUT_S,
    };
    if (http_listen(&hopts, &http, &err) < 0)
        goto out;
    bool v6 = strchr(conf.listen_host, ':') != NULL;
    listen_base = xasprintf(v6 ? "http://[%s]:%d" : "http://%s:%d",
                            conf.listen_host, http_port(http));

    struct worker_deps wdeps = {
        .conf = &conf, .store = store, .blob = blob, .engine = engine
    };
    if (worker_start(&wdeps, &workers, &err) < 0)
        goto out;
    struct api_deps adeps = {
        .conf = &conf,
        .store = store,
        .auth = auth,
        .blob = blob,
        .listen_base = listen_base,
        .on_submit = worker_notify,
        .on_submit_arg = workers,
    };
    api = api_new(&adeps);
    if (http_serve(http, api_handle, api, &err) < 0)
        goto out;

    printf("paddock: listening on %s\n", listen_base);
    fflush(stdout);
    log_info("serving",
             "listen=%s data=%s store=%s workers=%d "
             "http_threads=%d engine=%s",
             listen_base, conf.data_dir, store_name(store), conf.workers,
             conf.http_threads, engine_name(engine));

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("shutting down", "signal=%d", sig);
    ret = 0;
out:
    if (err.code)
        fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
    http_stop(http);      /* no new requests */
    worker_stop(workers); /* running tasks go back to PENDING */
    api_free(api);
    engine_free(engine);
    auth_free(auth);
    blob_free(blob);
    store_close(store);
    free(listen_base);
    conf_fini(&conf);
    return ret;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "help";
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("paddock %s\n", PADDOCK_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        if (argc > 2 && strcmp(argv[2], "serve") == 0)
            serve_usage(stdout);
        else
            usage(stdout);
        return 0;
    }
    fprintf(stderr, "paddock: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
