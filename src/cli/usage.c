/* `paddock usage`: a paddock server's usage report (GET /api/v1/usage,
 * docs/extensions.md, "Usage") as a table, CSV or JSON. */
#include "cli.h"

#include <jansson.h>
#include <string.h>

/* A query value: digits, letters, '_' and '-' only (no escaping needed);
 * false with the reason naming the flag. */
static bool plain(const char *flag, const char *v, struct errmsg *err)
{
    size_t n = strlen(v);
    bool ok = n > 0 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'z') ||
             (v[i] >= 'A' && v[i] <= 'Z') || v[i] == '_' || v[i] == '-';
    if (!ok)
        errmsg_set(err, ERR_INVALID_PARAMETER,
                   "%s: expected 1 to 64 letters, digits, '_' or '-'", flag);
    return ok;
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void put_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        cli_put_clean(stdout, s, CLI_SHOW_MAX);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s == '\r' || *s == '\n' ? ' ' : *s);
    }
    putchar('"');
}

/* A JSON value as text: a string as is, a number as the server wrote it. */
static void value_text(const json_t *v, char *out, size_t n)
{
    if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, "%.2f", json_real_value(v));
    else
        snprintf(out, n, "-");
}

static void put_rows(const json_t *out, bool csv)
{
    const char *group = json_string_value(json_object_get(out, "group_by"));
    const char *field = group && strcmp(group, "key") == 0 ? "key_id" : group;
    json_t *rows = json_object_get(out, "rows"), *row;
    size_t i;
    char g[80], t[32], s[32], a[40];
    if (!field)
        field = "group";
    if (csv)
        printf("%s,tasks,seconds,amount\n", field);
    else
        printf("%-28s %8s %12s %18s\n", field, "TASKS", "SECONDS", "AMOUNT");
    json_array_foreach(rows, i, row)
    {
        value_text(json_object_get(row, field), g, sizeof(g));
        value_text(json_object_get(row, "tasks"), t, sizeof(t));
        value_text(json_object_get(row, "seconds"), s, sizeof(s));
        value_text(json_object_get(row, "amount"), a, sizeof(a));
        if (csv) {
            put_field(g);
            printf(",%s,%s,%s\n", t, s, a);
        } else {
            size_t w = strlen(g) < 28 ? strlen(g) : 28;
            cli_put_clean(stdout, g, 28);
            printf("%*s %8s %12s %18s\n", (int)(28 - w), "", t, s, a);
        }
    }
    if (!csv) {
        json_t *total = json_object_get(out, "total");
        value_text(json_object_get(total, "tasks"), t, sizeof(t));
        value_text(json_object_get(total, "seconds"), s, sizeof(s));
        value_text(json_object_get(total, "amount"), a, sizeof(a));
        printf("%-28s %8s %12s %18s\n", "total", t, s, a);
    }
}

int cli_cmd_usage(struct cli *c)
{
    struct hh_answer a = { 0 };
    struct buf path = BUF_INIT;
    struct errmsg err = { 0 };
    const struct {
        const char *flag, *param, *value;
    } q[] = {
        { "--start", "start_time", c->o.start },
        { "--end", "end_time", c->o.end },
        { "--group-by", "group_by", c->o.group_by },
        { "--key-id", "key_id", c->o.key_id },
    };
    int ret;

    buf_puts(&path, "/api/v1/usage");
    char sep = '?';
    for (size_t i = 0; i < ARRAY_LEN(q); i++) {
        if (!q[i].value)
            continue;
        if (!plain(q[i].flag, q[i].value, &err)) {
            ret = cli_usage_error(c, &err);
            goto out;
        }
        buf_printf(&path, "%c%s=%s", sep, q[i].param, q[i].value);
        sep = '&';
    }
    if ((ret = cli_connect(c)) != CLI_EXIT_OK ||
        (ret = cli_call(c, "GET", path.data, &a)) != CLI_EXIT_OK)
        goto out;
    if (!a.output || !json_is_array(json_object_get(a.output, "rows"))) {
        cli_print_json(c, &a);
        fprintf(stderr, "paddock: HTTP 200 but the answer has no "
                        "output.rows[] (is the endpoint paddock?)\n");
        ret = CLI_EXIT_HTTP;
        goto out;
    }
    if (c->o.json)
        cli_print_json(c, &a);
    else
        put_rows(a.output, c->o.csv);
out:
    hh_answer_fini(&a);
    buf_fini(&path);
    return ret;
}
