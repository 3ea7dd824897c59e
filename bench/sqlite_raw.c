/*
 * sqlite_raw: the reference of the "durable submits/s" bench row. Inserts
 * one task-like row per transaction into a WAL database with
 * synchronous = FULL (the pragmas of src/store/sqlite.c) for a fixed time
 * and prints {"rows": N, "seconds": S, "rows_per_s": R} on one line.
 *
 * The row has the shape of paddock's `tasks` row at submit: a time-ordered
 * UUID-like text key (UNIQUE, as task_id), a key id, the model, the status,
 * a ~300-byte JSON spec and the prompt. No triggers or secondary indexes:
 * this is what one durable commit costs on this disk, nothing more.
 *
 * Usage: sqlite_raw DB_PATH SECONDS
 * Build: cc -O2 -o sqlite_raw bench/sqlite_raw.c -lsqlite3
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char schema[] = "PRAGMA journal_mode = WAL;"
                             "PRAGMA synchronous = FULL;"
                             "PRAGMA foreign_keys = OFF;"
                             "CREATE TABLE IF NOT EXISTS tasks ("
                             " id INTEGER PRIMARY KEY,"
                             " task_id TEXT NOT NULL UNIQUE,"
                             " key_id TEXT NOT NULL,"
                             " model TEXT NOT NULL,"
                             " status TEXT NOT NULL,"
                             " spec TEXT NOT NULL,"
                             " prompt TEXT,"
                             " submit_ms INTEGER NOT NULL,"
                             " expire_ms INTEGER NOT NULL);";

static const char insert_sql[] =
    "INSERT INTO tasks (task_id, key_id, model, status, spec, prompt, "
    "submit_ms, expire_ms) VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, ?7)";

/* The prompt of the bench's submits (bench.py PROMPT): ~150 characters,
 * which makes the spec ~300 bytes as paddock stores it. */
static const char prompt[] =
    "a chestnut horse galloping along a wide beach at dawn, waves breaking "
    "behind it, low sun, long shadows, slow camera pan from left to right";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: key bits without a syscall per row. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* A UUIDv7-style text id: 48 bits of milliseconds, then random bits. */
static void make_id(char *out, size_t n, int64_t ms, uint64_t *s)
{
    uint64_t a = rnd(s), b = rnd(s);
    snprintf(out, n, "%08x-%04x-7%03x-%04x-%012llx",
             (unsigned)((uint64_t)ms >> 16), (unsigned)(ms & 0xffff),
             (unsigned)(a & 0xfff), (unsigned)(0x8000 | ((a >> 12) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffULL));
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DB_PATH SECONDS\n", argv[0]);
        return 2;
    }
    double seconds = strtod(argv[2], NULL);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int status = 1;
    char spec[1024];
    snprintf(spec, sizeof(spec),
             "{\"model\":\"happyhorse-1.0-t2v\",\"prompt\":\"%s\","
             "\"media\":[],\"resolution\":480,\"ratio\":\"16:9\","
             "\"duration\":3,\"watermark\":true,\"seed\":12345,"
             "\"audio_setting\":\"auto\"}",
             prompt);

    if (sqlite3_open_v2(argv[1], &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite_raw: %s: %s\n", argv[1],
                db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }

    uint64_t seed = (uint64_t)now_ms() | 1;
    long rows = 0;
    double start = now_s(), t = start;
    while (t - start < seconds) {
        char id[40];
        int64_t ms = now_ms();
        make_id(id, sizeof(id), ms, &seed);
        /* One transaction per row, as one submit commits one task. */
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, "cfg_0123456789abcdef", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, "happyhorse-1.0-t2v", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, spec, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, prompt, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, ms);
        sqlite3_bind_int64(st, 7, ms + 86400000);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
        sqlite3_reset(st);
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
        rows++;
        t = now_s();
    }
    printf("{\"rows\": %ld, \"seconds\": %.3f, \"rows_per_s\": %.1f, "
           "\"spec_bytes\": %zu}\n",
           rows, t - start, (double)rows / (t - start), strlen(spec));
    status = 0;
    goto out;
fail:
    fprintf(stderr, "sqlite_raw: %s\n", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return status;
}
