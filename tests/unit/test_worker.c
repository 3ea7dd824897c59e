/*
 * Unit tests of src/worker: a real pool (dispatcher, render threads,
 * keeper) on a temporary SQLite store, with the command engine running
 * shell scripts written here that succeed, fail, hang past their deadline,
 * ignore SIGTERM, or keep running while their lease is taken by another
 * owner; the store's fault hook fails a commit. Every case waits for what
 * the store says (a hang guard of a minute, never a speed limit) and then
 * checks the record, the attempts and the files under the data directory.
 */
#include "../../src/blob/blob.h"
#include "../../src/store/store.h"
#include "../../src/worker/worker.h"
#include "script.h"
#include "unit.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-worker-XXXXXX";
static char video[128]; /* a valid MP4 the succeeding script copies */

/* One pool with its store, data directory and routes; a case's world. */
struct world {
    struct conf conf;
    struct store *store;
    struct blob *blob;
    struct route_table *routes;
    struct worker_pool *pool;
    char data[128], url[160];
    atomic_int finished; /* on_finish calls */
};

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void on_finish(void *arg, const char *task_id)
{
    (void)task_id;
    struct world *w = arg;
    atomic_fetch_add(&w->finished, 1);
}

/* A script under dir (made executable); its path. */
static const char *script(const char *name, const char *body)
{
    return unit_script(dir, name, body);
}

/* Start a pool serving every model with `engine` (a spec), with more
 * options; false when it could not (the reason printed). */
static bool world_start(struct world *w, const char *engine,
                        const char *const *more)
{
    static int n;
    memset(w, 0, sizeof(*w));
    snprintf(w->data, sizeof(w->data), "%s/data%d", dir, ++n);
    snprintf(w->url, sizeof(w->url), "sqlite:%s/paddock.db", w->data);
    mkdir(w->data, 0700);
    char *argv[32] = { "--data",  w->data, "--store",   w->url,
                       "--lease", "900ms", "--workers", "2",
                       "--grace", "300ms", "--engine",  (char *)engine };
    int argc = 12;
    for (int i = 0; more && more[i] && argc < 31; i++)
        argv[argc++] = (char *)more[i];
    argv[argc] = NULL;
    char *envp[] = { NULL };
    bool help;
    struct errmsg err = { 0 };
    unsigned char key[32];
    if (conf_load(&w->conf, argc, argv, envp, &help, &err) < 0)
        goto fail;
    if (store_open(w->conf.store_url, &w->store, &err) < 0)
        goto fail;
    if (store_secret(w->store, "url-signing", key) < 0 ||
        blob_open(w->conf.data_dir, key, &w->blob, &err) < 0 ||
        route_table_new(&w->conf, &w->routes, &err) < 0)
        goto fail;
    struct worker_deps d = { .conf = &w->conf,
                             .store = w->store,
                             .blob = w->blob,
                             .routes = w->routes,
                             .on_finish = on_finish,
                             .on_finish_arg = w };
    if (worker_start(&d, &w->pool, &err) < 0)
        goto fail;
    return true;
fail:
    fprintf(stderr, "  world: %s\n", errmsg_text(&err));
    route_table_free(w->routes);
    blob_free(w->blob);
    store_close(w->store);
    conf_fini(&w->conf);
    memset(w, 0, sizeof(*w));
    return false;
}

static void world_stop(struct world *w, int64_t grace_ms)
{
    worker_stop(w->pool, grace_ms);
    w->pool = NULL;
    route_table_free(w->routes);
    blob_free(w->blob);
    store_close(w->store);
    conf_fini(&w->conf);
}

/* Submit a text-to-video task of `seconds`; its id into id. */
static bool submit(struct world *w, int seconds, char *id)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"model\":\"happyhorse-1.0-t2v\",\"input\":{\"prompt\":"
             "\"a horse\"},\"parameters\":{\"resolution\":\"480P\","
             "\"duration\":%d}}",
             seconds);
    struct job job;
    struct errmsg err = { 0 };
    if (task_job_parse(body, strlen(body), 7, NULL, &job, &err) < 0) {
        fprintf(stderr, "  parse: %s\n", errmsg_text(&err));
        return false;
    }
    struct task t = { .status = TASK_PENDING };
    id_uuid7(t.task_id);
    snprintf(t.key_id, sizeof(t.key_id), "k1");
    snprintf(t.model, sizeof(t.model), "%s", job.model);
    t.spec = task_job_to_json(&job);
    t.submit_ms = clock_now_ms();
    t.expire_ms = t.submit_ms + 86400000;
    task_job_fini(&job);
    struct store_submit sub = { .task = &t };
    char replay[UUID_STR_LEN + 1];
    int rc = store_submit(w->store, &sub, replay);
    snprintf(id, UUID_STR_LEN + 1, "%s", t.task_id);
    free(t.spec);
    worker_notify(w->pool);
    return rc == 0;
}

/* Wait (a minute at most: a hang guard) until the task's status is
 * `want`; the record into t (the caller calls task_fini). */
static bool wait_status(struct world *w, const char *id, enum task_status want,
                        struct task *t)
{
    for (int i = 0; i < 6000; i++) {
        memset(t, 0, sizeof(*t));
        if (store_get(w->store, id, t) == 0 && t->status == want)
            return true;
        task_fini(t);
        sleep_ms(10);
    }
    memset(t, 0, sizeof(*t));
    store_get(w->store, id, t);
    fprintf(stderr, "  %s: status %d, wanted %d\n", id, t->status, want);
    return false;
}

/* Files in data/sub whose name contains `part` (NULL: any). */
static int files_in(const struct world *w, const char *sub, const char *part)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", w->data, sub);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (!part || strstr(e->d_name, part)))
            n++;
    closedir(d);
    return n;
}

static const char *ok_script(void)
{
    static char body[512];
    snprintf(body, sizeof(body),
             UNIT_READ_OUTPUT "echo progress 50\ncp '%s' \"$out\"\nexit 0",
             video);
    return script("ok", body);
}

/* ------------------------------------------------------------- cases */

static void succeeds_with_the_file_and_usage(void)
{
    char spec[160], id[UUID_STR_LEN + 1];
    snprintf(spec, sizeof(spec), "command:%s", ok_script());
    struct world w;
    CHECK(world_start(&w, spec, NULL));
    if (!w.pool)
        return;
    struct task t;
    CHECK(submit(&w, 3, id));
    CHECK(wait_status(&w, id, TASK_SUCCEEDED, &t));
    CHECK_INT(t.attempt, 1);
    CHECK(t.result != NULL);
    CHECK(t.usage.output_s > 0);
    CHECK_INT(files_in(&w, "results", id), 1);
    CHECK_INT(files_in(&w, "tmp", id), 0);
    task_fini(&t);
    world_stop(&w, 1000);
    CHECK_INT(atomic_load(&w.finished), 1);
}

static void a_failure_keeps_the_engine_code(void)
{
    const char *p =
        script("fail", "cat >/dev/null\n"
                       "echo 'error {\"code\":\"DataInspectionFailed\","
                       "\"message\":\"the horse is not allowed\"}'\n"
                       "exit 3");
    char spec[160], id[UUID_STR_LEN + 1];
    snprintf(spec, sizeof(spec), "command:%s", p);
    struct world w;
    CHECK(world_start(&w, spec, NULL));
    if (!w.pool)
        return;
    struct task t;
    CHECK(submit(&w, 3, id));
    CHECK(wait_status(&w, id, TASK_FAILED, &t));
    CHECK_STR(t.code, "DataInspectionFailed");
    CHECK(t.message && strstr(t.message, "not allowed"));
    CHECK_INT(t.attempt, 1);
    CHECK_INT(files_in(&w, "results", id), 0);
    CHECK_INT(files_in(&w, "tmp", id), 0);
    task_fini(&t);
    world_stop(&w, 1000);
}

/* A program that hangs is stopped at the deadline; one that ignores
 * SIGTERM is killed after the grace; both tasks fail as timeouts and
 * leave no file. */
static void hangs_and_stubborn_programs_time_out(void)
{
    static const struct {
        const char *name, *body;
    } progs[] = {
        { "hang", "cat >/dev/null\nexec sleep 600" },
        { "stubborn", "cat >/dev/null\ntrap '' TERM\n"
                      "while :; do sleep 0.1; done" },
    };
    for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
        char spec[160], id[UUID_STR_LEN + 1];
        snprintf(spec, sizeof(spec), "command:%s",
                 script(progs[i].name, progs[i].body));
        const char *more[] = { "--deadline", "1s", NULL };
        struct world w;
        CHECK(world_start(&w, spec, more));
        if (!w.pool)
            return;
        struct task t;
        CHECK(submit(&w, 3, id));
        CHECK(wait_status(&w, id, TASK_FAILED, &t));
        CHECK_STR(t.code, "InternalError.Timeout");
        CHECK_INT(files_in(&w, "tmp", id), 0);
        task_fini(&t);
        world_stop(&w, 1000);
    }
}

/*
 * A command engine whose program, on its first run only, creates
 * dir/`flag` and then runs `first` (a hang); later runs copy the video.
 * The spec into spec; the flag's path into flag_path.
 */
static void once_engine(const char *flag, const char *first, char *spec,
                        size_t spec_size, char *flag_path, size_t flag_size)
{
    char body[512];
    snprintf(flag_path, flag_size, "%s/%s", dir, flag);
    snprintf(body, sizeof(body),
             UNIT_READ_OUTPUT "if [ ! -e '%s' ]; then\n"
                              "  touch '%s'\n"
                              "  %s\n"
                              "fi\n"
                              "cp '%s' \"$out\"",
             flag_path, flag_path, first, video);
    snprintf(spec, spec_size, "command:%s", script(flag, body));
}

/* Wait (a hang guard) until the first run has begun. */
static void wait_for(const char *path)
{
    for (int i = 0; i < 6000 && access(path, F_OK) != 0; i++)
        sleep_ms(10);
}

/* Another owner takes the lease while the program runs (a rescue by
 * another node after this one stalled): this process stops its render,
 * commits nothing and leaves no file; once the thief's lease expires the
 * task is rescued and done again, attempt 2, with one result file. */
static void a_lost_lease_commits_nothing(void)
{
    char spec[160], flag[160], id[UUID_STR_LEN + 1];
    once_engine("stolen-once", "while :; do sleep 0.05; done", spec,
                sizeof(spec), flag, sizeof(flag));
    struct world w;
    CHECK(world_start(&w, spec, NULL));
    if (!w.pool)
        return;
    struct task t;
    CHECK(submit(&w, 3, id));
    CHECK(wait_status(&w, id, TASK_RUNNING, &t));
    task_fini(&t);
    /* Wait until the program runs, then steal the lease. */
    wait_for(flag);
    char db[200];
    snprintf(db, sizeof(db), "%s/paddock.db", w.data);
    sqlite3 *h = NULL;
    CHECK_INT(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE tasks SET lease_owner = 'thief/1/x', lease_until = %lld "
             "WHERE task_id = '%s' AND status = 'RUNNING'",
             (long long)(clock_now_ms() + 1500), id);
    CHECK_INT(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_changes(h), 1);
    sqlite3_close(h);
    CHECK(wait_status(&w, id, TASK_SUCCEEDED, &t));
    CHECK_INT(t.attempt, 2);
    CHECK_INT(files_in(&w, "results", id), 1);
    CHECK_INT(files_in(&w, "tmp", id), 0);
    task_fini(&t);
    world_stop(&w, 1000);
    unlink(flag);
}

/* The commit of a finished render fails once (the store's fault hook):
 * the task is not lost: it ends SUCCEEDED, with one result file. */
static void a_failed_commit_is_retried(void)
{
    char spec[160], id[UUID_STR_LEN + 1];
    snprintf(spec, sizeof(spec), "command:%s", ok_script());
    struct world w;
    CHECK(world_start(&w, spec, NULL));
    if (!w.pool)
        return;
    store_fault_set(w.store, STORE_OP_FINISH, 1, ERR_STORE);
    struct task t;
    CHECK(submit(&w, 3, id));
    CHECK(wait_status(&w, id, TASK_SUCCEEDED, &t));
    CHECK_INT(files_in(&w, "results", id), 1);
    CHECK_INT(files_in(&w, "tmp", id), 0);
    task_fini(&t);
    world_stop(&w, 1000);
}

/* A stop while a program hangs: after the grace it is stopped and its
 * task goes back to PENDING (not FAILED, not lost), attempt not counted
 * against it; a new pool on the same store then finishes it. */
static void stop_gives_running_tasks_back(void)
{
    char spec[160], flag[160], id[UUID_STR_LEN + 1];
    once_engine("second-run", "exec sleep 600", spec, sizeof(spec), flag,
                sizeof(flag));
    struct world w;
    CHECK(world_start(&w, spec, NULL));
    if (!w.pool)
        return;
    struct task t;
    CHECK(submit(&w, 3, id));
    wait_for(flag);
    worker_stop(w.pool, 200);
    w.pool = NULL;
    memset(&t, 0, sizeof(t));
    CHECK_INT(store_get(w.store, id, &t), 0);
    CHECK_INT(t.status, TASK_PENDING);
    CHECK_INT(files_in(&w, "tmp", id), 0);
    task_fini(&t);
    struct worker_deps d = { .conf = &w.conf,
                             .store = w.store,
                             .blob = w.blob,
                             .routes = w.routes,
                             .on_finish = on_finish,
                             .on_finish_arg = &w };
    struct errmsg err = { 0 };
    CHECK_INT(worker_start(&d, &w.pool, &err), 0);
    CHECK(wait_status(&w, id, TASK_SUCCEEDED, &t));
    CHECK_INT(files_in(&w, "results", id), 1);
    task_fini(&t);
    world_stop(&w, 1000);
    unlink(flag);
}

int main(void)
{
    unit_suite = "worker";
    struct errmsg err = { 0 };
    if (!mkdtemp(dir) || net_global_init(&err) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    snprintf(video, sizeof(video), "%s/fixture.mp4", dir);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=24 "
             "-t 2 -c:v libx264 -preset ultrafast -pix_fmt yuv420p '%s'",
             video);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make %s\n", video);
        return 1;
    }
    RUN(succeeds_with_the_file_and_usage);
    RUN(a_failure_keeps_the_engine_code);
    RUN(hangs_and_stubborn_programs_time_out);
    RUN(a_lost_lease_commits_nothing);
    RUN(a_failed_commit_is_retried);
    RUN(stop_gives_running_tasks_back);
    net_global_fini();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return UNIT_END();
}
