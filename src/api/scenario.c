/*
 * Sandbox scenarios at the API (docs/extensions.md, "Scenarios"): at
 * submit, the sources merged over the engine's options (key default <
 * prompt token < X-Paddock-Scenario), refused for a model whose engine
 * takes none, the submit= directive answered here, and the rest resolved
 * into the job's plan; at query, a task's query-errors counted in the
 * store, and its link made expired or paced.
 */
#include "api_int.h"

#include "../log/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sources, as messages name them. */
#define SRC_HEADER "header " TASK_SCENARIO_HEADER
#define SRC_TOKEN  "input.prompt's [paddock: ...] token"
#define SRC_KEY    "the API key's default scenario"
/* link=slow: what a slow download link sends. */
#define SLOW_LINK_RATE (64 << 10)

/* A scenario given for a model whose engine takes none: which source. */
static int not_steerable(const struct route *route, const struct job *job,
                         const char *source, struct errmsg *e)
{
    return errmsg_set(e, ERR_INVALID_PARAMETER,
                      "%s: %s is served by engine %s (%s), which takes no "
                      "scenario; scenarios steer sandbox engines only",
                      source, job->model, route_engine_name(route->engine),
                      route_engine_backend(route->engine));
}

/* The submit= directive: this answer instead of a task. */
static void answer_submit(struct call *c, const struct task_scenario *sc)
{
    struct buf b = BUF_INIT;
    char msg[320];
    snprintf(msg, sizeof(msg),
             "the scenario asked this submit to answer %d %s "
             "(submit=%d:%s); no task was created",
             sc->submit_status, sc->submit_code, sc->submit_status,
             sc->submit_code);
    if (sc->submit_status == 429)
        http_reply_header(c->rep, "Retry-After", "1");
    task_json_error(&b, http_req_id(c->req), sc->submit_code, msg);
    api_reply_json(c, sc->submit_status, &b);
    log_info("scenario answered a submit", "status=%d code=%s request_id=%s",
             sc->submit_status, sc->submit_code, http_req_id(c->req));
}

int api_scenario_submit(struct call *c, const struct route *route,
                        struct job *job, char **orig, struct errmsg *e)
{
    const struct task_scenario *base =
        engine_scenario(route_engine_get(route->engine));
    const char *header = http_req_header(c->req, TASK_SCENARIO_HEADER);
    char key[LIMIT_SCENARIO_BYTES + 1];
    bool has_key = auth_key_scenario(c->api->d.auth, c->key_id, key);
    bool has_token =
        job->prompt && strstr(job->prompt, TASK_SCENARIO_TOKEN) != NULL;
    *orig = NULL;
    if (!base) {
        if (header && header[0])
            return not_steerable(route, job, SRC_HEADER, e);
        if (has_token)
            return not_steerable(route, job, SRC_TOKEN, e);
        if (has_key)
            return not_steerable(route, job, SRC_KEY, e);
        return 0;
    }
    struct task_scenario sc = *base;
    char *cleaned = NULL;
    int rc = 0;
    if (has_key)
        rc = task_scenario_parse(&sc, key, strlen(key), SRC_KEY, e);
    if (rc == 0)
        rc = task_scenario_from_prompt(&sc, job->prompt, &cleaned, e);
    if (rc >= 0 && header)
        rc = task_scenario_parse(&sc, header, strlen(header), SRC_HEADER, e);
    if (rc < 0) {
        free(cleaned);
        return rc;
    }
    if (sc.set & TASK_SC_SUBMIT) {
        free(cleaned);
        answer_submit(c, &sc);
        return 1;
    }
    if (cleaned) { /* the sandbox renders the prompt without its token */
        *orig = job->prompt;
        job->prompt = cleaned;
    }
    task_scenario_plan(&sc, job, &job->scenario);
    return 0;
}

/* The plan in a stored spec (nothing when it has none). */
static void plan_of(const struct task *t, struct job_scenario *out)
{
    memset(out, 0, sizeof(*out));
    /* Most tasks have none: no parse for them. */
    if (!t->spec || !strstr(t->spec, "\"scenario\":"))
        return;
    json_t *root = json_loads(t->spec, 0, NULL);
    if (root &&
        task_scenario_from_json(json_object_get(root, "scenario"), out) < 0)
        memset(out, 0, sizeof(*out));
    json_decref(root);
}

bool api_scenario_query(struct call *c, const struct task *t,
                        struct job_scenario *plan)
{
    plan_of(t, plan);
    int n = plan->query_errors, counted = 0;
    if (n <= 0 || t->queries >= n)
        return false;
    if (store_count_query(c->api->d.store, t->task_id, n, &counted) < 0 ||
        counted == 0)
        return false; /* uncounted: answered normally, never twice */
    char msg[200];
    snprintf(msg, sizeof(msg),
             "the scenario asked the first %d queries of this task to fail "
             "(query-errors=%d); this was query %d",
             n, n, counted);
    api_reply_error(c, ERR_INTERNAL, msg);
    return true;
}

void api_scenario_video_url(struct call *c, const struct task *t,
                            const struct job_scenario *plan, struct buf *url)
{
    char base[API_URL_BASE_MAX];
    int64_t expires = t->expire_ms, rate = 0;
    /* link=expired: signed as it should be, but already past its time, so
     * the download answers exactly as an expired link does. */
    if (plan->link == TASK_LINK_EXPIRED)
        expires = clock_now_ms() - 1000;
    else if (plan->link == TASK_LINK_SLOW)
        rate = SLOW_LINK_RATE;
    blob_url_paced(c->api->d.blob, url, api_url_base(c, base), t->result,
                   expires, rate);
}

bool api_scenario_shapes_answer(const struct task *t)
{
    struct job_scenario plan;
    plan_of(t, &plan);
    return plan.query_errors > 0 || plan.link != TASK_LINK_NORMAL;
}
