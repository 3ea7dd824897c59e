/*
 * paddock webhooks create|list|delete|deliveries: a paddock server's
 * webhook endpoints of the key (docs/extensions.md, "Webhooks"), through
 * hh/ like every other command; text for people, --json the answers.
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define HOOKS_PATH "/api/v1/webhooks"

static void cell(json_t *obj, const char *key, int width)
{
    json_t *v = json_object_get(obj, key);
    char num[32];
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        s = num;
    }
    int n = (int)strlen(s);
    cli_put_clean(stdout, s, CLI_SHOW_MAX);
    for (; width > 0 && n < width; n++)
        fputc(' ', stdout);
    fputs(width > 0 ? "  " : "", stdout);
}

static void put_events(json_t *hook)
{
    json_t *ev = json_object_get(hook, "events"), *e;
    size_t i;
    json_array_foreach(ev, i, e)
    {
        if (i)
            fputc(',', stdout);
        if (json_is_string(e))
            cli_put_clean(stdout, json_string_value(e), 32);
    }
}

/* The answer's output object, or NULL (said on stderr). */
static json_t *output_of(const struct hh_answer *a)
{
    json_t *out = json_object_get(a->json, "output");
    if (!json_is_object(out))
        fprintf(stderr, "paddock: HTTP 200 but the answer has no output\n");
    return out;
}

static int create(struct cli *c, struct hh_answer *a)
{
    struct buf body = BUF_INIT;
    struct errmsg err = { 0 };
    int ret;
    if (!c->o.url) {
        errmsg_set(&err, ERR_INVALID_PARAMETER,
                   "--url is required: paddock webhooks create --url URL");
        return cli_usage_error(c, &err);
    }
    buf_puts(&body, "{\"url\":");
    buf_json_str(&body, c->o.url);
    if (c->o.events) {
        buf_puts(&body, ",\"events\":[");
        const char *p = c->o.events;
        for (bool first = true; *p; first = false) {
            size_t n = strcspn(p, ",");
            buf_puts(&body, first ? "" : ",");
            buf_json_strn(&body, p, n);
            p += n + (p[n] == ',');
        }
        buf_puts(&body, "]");
    }
    buf_puts(&body, "}");
    ret = cli_connect(c);
    if (ret == CLI_EXIT_OK)
        ret = cli_call_body(c, "POST", HOOKS_PATH, &body, a);
    buf_fini(&body);
    if (ret != CLI_EXIT_OK)
        return ret;
    json_t *out = output_of(a);
    if (!out)
        return CLI_EXIT_HTTP;
    if (c->o.json) {
        cli_print_json(c, a);
        return CLI_EXIT_OK;
    }
    printf("webhook_id  ");
    cell(out, "webhook_id", 0);
    printf("\nsecret      ");
    cell(out, "secret", 0);
    printf("\nevents      ");
    put_events(out);
    fputc('\n', stdout);
    fprintf(stderr, "paddock: keep the secret: it is shown only this once\n");
    return CLI_EXIT_OK;
}

static int list(struct cli *c, struct hh_answer *a)
{
    int ret = cli_connect(c);
    if (ret == CLI_EXIT_OK)
        ret = cli_call(c, "GET", HOOKS_PATH, a);
    if (ret != CLI_EXIT_OK)
        return ret;
    json_t *out = output_of(a), *h;
    if (!out)
        return CLI_EXIT_HTTP;
    if (c->o.json) {
        cli_print_json(c, a);
        return CLI_EXIT_OK;
    }
    printf("%-36s  %-8s  %-19s  %-58s  %s\n", "WEBHOOK_ID", "STATUS", "CREATED",
           "EVENTS", "URL");
    size_t i;
    json_array_foreach(json_object_get(out, "webhooks"), i, h)
    {
        cell(h, "webhook_id", 36);
        cell(h, "status", 8);
        cell(h, "created_time", 23);
        put_events(h);
        fputs("  ", stdout);
        cell(h, "url", 0);
        fputc('\n', stdout);
    }
    return CLI_EXIT_OK;
}

static int delete (struct cli *c, struct hh_answer *a, const char *path)
{
    int ret = cli_connect(c);
    if (ret == CLI_EXIT_OK)
        ret = cli_call(c, "DELETE", path, a);
    if (ret != CLI_EXIT_OK)
        return ret;
    if (c->o.json)
        cli_print_json(c, a);
    else
        fprintf(stderr, "paddock: webhook %s deleted\n", c->o.task_id);
    return CLI_EXIT_OK;
}

static int deliveries(struct cli *c, struct hh_answer *a, const char *path)
{
    int64_t page = 1, size = 20;
    struct errmsg err = { 0 };
    if ((c->o.page && parse_i64(c->o.page, 1, 1000000, &page) < 0) ||
        (c->o.page_size && parse_i64(c->o.page_size, 1, 100, &size) < 0)) {
        errmsg_set(&err, ERR_INVALID_PARAMETER,
                   "--page is from 1, --page-size from 1 to 100");
        return cli_usage_error(c, &err);
    }
    char *full = xasprintf("%s/deliveries?page_no=%lld&page_size=%lld", path,
                           (long long)page, (long long)size);
    int ret = cli_connect(c);
    if (ret == CLI_EXIT_OK)
        ret = cli_call(c, "GET", full, a);
    free(full);
    if (ret != CLI_EXIT_OK)
        return ret;
    json_t *out = output_of(a), *d;
    if (!out)
        return CLI_EXIT_HTTP;
    if (c->o.json) {
        cli_print_json(c, a);
        return CLI_EXIT_OK;
    }
    printf("%-28s  %-14s  %-7s  %-9s  %-23s  %s\n", "DELIVERY_ID", "EVENT",
           "ATTEMPT", "STATUS", "TIME", "ERROR");
    size_t i;
    json_array_foreach(json_object_get(out, "deliveries"), i, d)
    {
        cell(d, "delivery_id", 28);
        cell(d, "event", 14);
        cell(d, "attempt", 7);
        cell(d, "status", 9);
        cell(d, "time", 23);
        cell(d, "error", 0);
        fputc('\n', stdout);
    }
    json_t *total = json_object_get(out, "total");
    if (json_is_integer(total))
        printf("page %lld, %lld deliveries in all\n", (long long)page,
               (long long)json_integer_value(total));
    return CLI_EXIT_OK;
}

int cli_cmd_webhooks(struct cli *c)
{
    struct hh_answer a = { 0 };
    struct errmsg err = { 0 };
    const char *act = c->o.action ? c->o.action : "";
    bool needs_id =
        strcmp(act, "delete") == 0 || strcmp(act, "deliveries") == 0;
    int ret;
    if (needs_id && !c->o.task_id) {
        errmsg_set(&err, ERR_INVALID_PARAMETER,
                   "WEBHOOK_ID is missing: paddock webhooks %s WEBHOOK_ID",
                   act);
        return cli_usage_error(c, &err);
    }
    if (!needs_id && c->o.task_id) {
        errmsg_set(&err, ERR_INVALID_PARAMETER, "unexpected argument '%.*s'",
                   100, c->o.task_id);
        return cli_usage_error(c, &err);
    }
    char *path = needs_id ? xasprintf(HOOKS_PATH "/%s", c->o.task_id) : NULL;
    if (strcmp(act, "create") == 0) {
        ret = create(c, &a);
    } else if (strcmp(act, "list") == 0) {
        ret = list(c, &a);
    } else if (strcmp(act, "delete") == 0) {
        ret = delete (c, &a, path);
    } else if (strcmp(act, "deliveries") == 0) {
        ret = deliveries(c, &a, path);
    } else {
        errmsg_set(&err, ERR_INVALID_PARAMETER,
                   "'%.*s' is not create, list, delete or deliveries", 40, act);
        ret = cli_usage_error(c, &err);
    }
    free(path);
    hh_answer_fini(&a);
    return ret;
}
