/*
 * conf: one immutable struct conf from defaults, the config file, the
 * environment and command-line flags, in that order (later wins).
 *
 * Every option is one row of a table in conf.c: its file key, its flag, its
 * environment variable, its type and its help line; `paddock serve --help`
 * and the config reference are printed from that table.
 *
 * Threads: load once in main; read-only afterwards.
 */
#ifndef PADDOCK_CONF_H
#define PADDOCK_CONF_H

#include "../core/core.h"

#include <stdio.h>

/* A repeatable option's values, in the order given. */
struct conf_list {
    char **v;
    size_t n;
};

/* A price line, price.MODEL.RESOLUTION = AMOUNT (per second). */
struct conf_price {
    char model[LIMIT_MODEL_NAME + 1];
    int resolution; /* 480, 720, 1080 */
    int64_t micro;  /* micro-units per second */
};

struct conf {
    char *listen;      /* "HOST:PORT" as given */
    char *listen_host; /* parsed from listen */
    int listen_port;   /* 0: an ephemeral port */
    char *data_dir;
    char *store_url;  /* default "sqlite:<data_dir>/paddock.db" */
    char *public_url; /* base of video_url; NULL: from the request's Host */
    struct conf_list api_keys;    /* plain keys (file, flags, env) */
    struct conf_list fetch_allow; /* CIDRs media fetches may reach */
    int workers;      /* render threads; default: the number of cores */
    int http_threads; /* HTTP polling threads; default: the number of cores */
    int64_t retention_ms;
    int64_t lease_ms;
    int max_attempts;
    int utc_offset_min;
    int64_t body_limit;
    int64_t upload_limit;   /* an upload's body, streamed to disk */
    int64_t body_memory;    /* request bodies in memory at once, all conns */
    char *webhook_schedule; /* delays between webhook attempts */
    int64_t query_cache;    /* bytes of terminal tasks' answers; 0: none */
    char *metrics_token;    /* NULL: /metrics takes any API key */
    char *log_level;
    int rate_limit;      /* requests per second per key; 0: none */
    int rate_burst;      /* bucket size */
    int max_active;      /* PENDING+RUNNING tasks per key; 0: none */
    int max_queue;       /* PENDING tasks of all keys; 0: none */
    int64_t deadline_ms; /* an engine run's time limit */
    struct conf_list model_deadline; /* "MODEL=DURATION" overrides */
    struct conf_list models; /* render only these (comma lists); none: all */
    int64_t grace_ms;        /* SIGTERM: running tasks may finish within this */
    int stream_max;          /* status streams open at once, this process */
    int stream_max_per_key;  /* of which one key's */
    int64_t
        stream_keepalive_ms;  /* a stream's comment line at least this often */
    int64_t fetch_timeout_ms; /* one input's whole download */
    char *engine;             /* the engine spec of "default" ("sandbox") */
    /* Model routing lines "engine.NAME[.OPTION]=VALUE", "model.MODEL=NAME",
     * "alias.ALIAS=MODEL", in the order given (parsed by route/). */
    struct conf_list routes;
    /* Ledger entries are kept this long after their task ended. */
    int64_t usage_retention_ms;
    struct conf_price *prices; /* price.MODEL.RESOLUTION lines */
    size_t n_prices;
};

/*
 * Fill *c from defaults, then `--config FILE` (or PADDOCK_CONFIG), then
 * PADDOCK_* variables from envp, then the flags in argv[0..argc). On a bad
 * value returns ERR_INVALID_PARAMETER with a message naming the option and
 * the expected form. *help is set when --help/-h was given.
 */
int conf_load(struct conf *c, int argc, char **argv, char **envp, bool *help,
              struct errmsg *err);
/* The model-deadline of `model`, or 0 when none is set. */
int64_t conf_model_deadline_ms(const struct conf *c, const char *model);
/* The price per second of `model` at `resolution` in micro-units (0 when
 * no price line names them). */
int64_t conf_price(const struct conf *c, const char *model, int resolution);
/* An amount ("0.14", "2", up to 6 decimals, at most LIMIT_PRICE_UNITS when
 * max is 0, else max micro-units) into micro-units exactly: 0, or
 * ERR_INVALID_PARAMETER. Also the keys API's and the CLI's reader. */
int conf_parse_amount(const char *s, int64_t max_micro, int64_t *out);
/* Release everything conf_load allocated. */
void conf_fini(struct conf *c);
/* The option reference: flags, variables, file keys, defaults. */
void conf_usage(FILE *out);

#endif
