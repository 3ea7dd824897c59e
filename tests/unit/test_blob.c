/* Unit tests of src/blob: names, signed links, durable commit. */
#include "../../src/blob/blob.h"
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-test-blob-XXXXXX";
static const unsigned char key[32] = { 1, 2, 3 };

static void names(void)
{
    char n[BLOB_NAME_MAX];
    blob_name("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", 3, n);
    CHECK_STR(n, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-3.mp4");
    CHECK(blob_name_valid(n));
    CHECK(!blob_name_valid("../../etc/passwd"));
    CHECK(!blob_name_valid("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-.mp4"));
    CHECK(!blob_name_valid("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-1.mp4x"));
    CHECK(!blob_name_valid("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-1a.mp4"));
    CHECK(!blob_name_valid("0190a1b2/c3d4-7e5f-8a6b-7c8d9e0f1a2b-1.mp4"));
    CHECK(!blob_name_valid(""));
}

/* Split "...?expires=E&signature=S" into its parts. */
static void parts(const char *url, char *exp, char *sig)
{
    const char *e = strstr(url, "expires=") + 8;
    const char *amp = strchr(e, '&');
    memcpy(exp, e, (size_t)(amp - e));
    exp[amp - e] = '\0';
    snprintf(sig, 65, "%s", strstr(url, "signature=") + 10);
}

static void links(void)
{
    struct blob *b = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(blob_open(dir, key, &b, &err), 0);
    const char *name = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-1.mp4";
    struct buf url = BUF_INIT;
    int64_t now = clock_now_ms();
    blob_url(b, &url, "http://h:1", name, now + 60000);
    CHECK(strncmp(url.data, "http://h:1/files/", 17) == 0);
    char exp[32], sig[80];
    parts(url.data, exp, sig);
    CHECK_INT(blob_verify(b, name, exp, sig, now), 0);
    CHECK_INT(blob_verify(b, name, exp, sig, now + 61000), ERR_BAD_SIGNATURE);
    sig[5] = sig[5] == 'a' ? 'b' : 'a';
    CHECK_INT(blob_verify(b, name, exp, sig, now), ERR_BAD_SIGNATURE);
    sig[5] = sig[5] == 'a' ? 'b' : 'a';
    CHECK_INT(blob_verify(b, name, "99999999999", sig, now), ERR_BAD_SIGNATURE);
    CHECK_INT(blob_verify(b, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-2.mp4", exp,
                          sig, now),
              ERR_BAD_SIGNATURE);
    CHECK_INT(blob_verify(b, name, NULL, sig, now), ERR_BAD_SIGNATURE);
    CHECK_INT(blob_verify(b, name, exp, NULL, now), ERR_BAD_SIGNATURE);
    CHECK_INT(blob_verify(b, name, exp, "short", now), ERR_BAD_SIGNATURE);
    /* Another key does not verify it. */
    struct blob *other = NULL;
    unsigned char k2[32] = { 9 };
    CHECK_INT(blob_open(dir, k2, &other, &err), 0);
    CHECK_INT(blob_verify(other, name, exp, sig, now), ERR_BAD_SIGNATURE);
    blob_free(other);
    /* A paced link: its rate is signed with the rest. */
    int64_t rate = -1;
    parts(url.data, exp, sig);
    CHECK_INT(blob_verify_paced(b, name, exp, NULL, sig, now, &rate), 0);
    CHECK_INT(rate, 0);
    buf_reset(&url);
    blob_url_paced(b, &url, "http://h:1", name, now + 60000, 65536);
    CHECK(strstr(url.data, "&rate=65536&signature=") != NULL);
    parts(url.data, exp, sig);
    CHECK_INT(blob_verify_paced(b, name, exp, "65536", sig, now, &rate), 0);
    CHECK_INT(rate, 65536);
    CHECK_INT(blob_verify_paced(b, name, exp, "655360", sig, now, &rate),
              ERR_BAD_SIGNATURE);
    CHECK_INT(blob_verify_paced(b, name, exp, NULL, sig, now, &rate),
              ERR_BAD_SIGNATURE); /* the pace cannot be dropped */
    CHECK_INT(blob_verify_paced(b, name, exp, "0", sig, now, &rate),
              ERR_BAD_SIGNATURE);
    buf_fini(&url);
    blob_free(b);
}

static void commit_and_open(void)
{
    struct blob *b = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(blob_open(dir, key, &b, &err), 0);
    const char *name = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-1.mp4";
    char *tmp = blob_tmp_path(b, name);
    int fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "hello", 5) == 5);
    close(fd);
    CHECK_INT(blob_commit(b, tmp, name), 0);
    CHECK(access(tmp, F_OK) != 0);
    uint64_t size = 0;
    CHECK_INT(blob_open_file(b, name, &fd, &size), 0);
    CHECK_INT(size, 5);
    close(fd);
    CHECK_INT(blob_open_file(b, "../x", &fd, &size), ERR_NOT_FOUND);
    CHECK_INT(blob_remove(b, name), 0);
    CHECK_INT(blob_open_file(b, name, &fd, &size), ERR_NOT_FOUND);
    CHECK_INT(blob_remove(b, name), 0); /* already gone is fine */
    /* A stale render in tmp/ is cleaned when the next process opens. */
    fd = open(tmp, O_CREAT | O_WRONLY, 0644);
    close(fd);
    blob_free(b);
    CHECK_INT(blob_open(dir, key, &b, &err), 0);
    CHECK(access(tmp, F_OK) != 0);
    free(tmp);
    blob_free(b);
}

static void touch(const char *path, int64_t age_s)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    struct timespec t[2] = { { .tv_sec = time(NULL) - age_s },
                             { .tv_sec = time(NULL) - age_s } };
    CHECK(futimens(fd, t) == 0);
    close(fd);
}

/* Another process's render in a shared tmp/ is left alone while it may
 * still be running; a dead one goes. */
static void tmp_sweep_keeps_live_renders(void)
{
    struct blob *b = NULL;
    struct errmsg err = { 0 };
    char host[64] = "host", path[600];
    CHECK_INT(blob_open(dir, key, &b, &err), 0);
    gethostname(host, sizeof(host) - 1);
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '-';
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);  /* a pid that is certainly dead */
    pid_t parent = getppid(); /* and one that is alive */
    const char *n = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-1.mp4";
    snprintf(path, sizeof(path), "%s/tmp/%s.%d.%s", dir, host, (int)child, n);
    touch(path, 0);
    snprintf(path, sizeof(path), "%s/tmp/%s.%d.%s", dir, host, (int)parent, n);
    touch(path, 0);
    snprintf(path, sizeof(path), "%s/tmp/otherhost.12.%s", dir, n);
    touch(path, 0);
    snprintf(path, sizeof(path), "%s/tmp/oldhost.12.%s", dir, n);
    touch(path, 3600);
    CHECK_INT(blob_sweep_tmp(b, false), 2);
    snprintf(path, sizeof(path), "%s/tmp/%s.%d.%s", dir, host, (int)parent, n);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof(path), "%s/tmp/otherhost.12.%s", dir, n);
    CHECK(access(path, F_OK) == 0);
    unlink(path);
    snprintf(path, sizeof(path), "%s/tmp/%s.%d.%s", dir, host, (int)parent, n);
    unlink(path);
    blob_free(b);
}

/* Uploads: stored per key, seen only by that key, copied out under a
 * cap, counted for the key's quota, swept by age with their empty
 * directories. */
static void uploads(void)
{
    struct blob *b = NULL;
    struct errmsg err = { 0 };
    const char *id = "0190f5b2-7c1e-4d2a-9b3c-5e6f7a8b9c0d";
    const char *id2 = "11111111-2222-4333-8444-555555555555";
    char path[600], copy[600];
    int64_t size = 0, mtime = 0, bytes = 0, oldest = 0;
    int count = 0, removed = 0;
    CHECK_INT(blob_open(dir, key, &b, &err), 0);

    CHECK(blob_upload_names_valid("cfg_0123456789abcdef", id));
    CHECK(!blob_upload_names_valid("../x", id));
    CHECK(!blob_upload_names_valid("", id));
    CHECK(
        !blob_upload_names_valid("k", "0190F5B2-7C1E-4D2A-9B3C-5E6F7A8B9C0D"));
    CHECK(!blob_upload_names_valid("k", "../../etc/passwd"));

    int64_t before = clock_now_ms();
    CHECK_INT(blob_upload_put(b, "k1", id, "hello", 5, &mtime), 0);
    CHECK(mtime >= before - 1000 && mtime <= clock_now_ms() + 1000);
    CHECK_INT(blob_upload_put(b, "k1", id2, "hi", 2, &mtime), 0);
    CHECK_INT(blob_upload_put(b, "../k", id, "x", 1, &mtime),
              ERR_INVALID_PARAMETER);
    snprintf(path, sizeof(path), "%s/uploads/k1/%s", dir, id);
    CHECK(access(path, F_OK) == 0);

    CHECK_INT(blob_upload_stat(b, "k1", id, &size, &mtime), 0);
    CHECK_INT(size, 5);
    CHECK_INT(blob_upload_stat(b, "k2", id, &size, &mtime), ERR_NOT_FOUND);
    CHECK_INT(blob_upload_usage(b, "k1", 0, 0, &count, &bytes, &oldest), 0);
    CHECK_INT(count, 2);
    CHECK_INT(bytes, 7);
    CHECK(oldest > 0);
    CHECK_INT(blob_upload_usage(b, "k1", clock_now_ms() + 1000,
                                clock_now_ms() + 1000, &count, &bytes, &oldest),
              0);
    CHECK_INT(count, 0); /* all older than "since": expired */
    CHECK_INT(blob_upload_usage(b, "nobody", 0, 0, &count, &bytes, &oldest), 0);
    CHECK_INT(count, 0);

    snprintf(copy, sizeof(copy), "%s/tmp/copy", dir);
    CHECK_INT(blob_upload_copy(b, "k1", id, copy, 100, &size, &err), 0);
    CHECK_INT(size, 5);
    char got[8] = "";
    int fd = open(copy, O_RDONLY);
    CHECK(fd >= 0 && read(fd, got, sizeof(got)) == 5);
    if (fd >= 0)
        close(fd);
    CHECK(memcmp(got, "hello", 5) == 0);
    unlink(copy);
    CHECK_INT(blob_upload_copy(b, "k1", id, copy, 4, &size, &err),
              ERR_TOO_LARGE);
    CHECK(access(copy, F_OK) != 0);
    CHECK_INT(blob_upload_copy(b, "k2", id, copy, 100, &size, &err),
              ERR_NOT_FOUND);
    CHECK(access(copy, F_OK) != 0);

    /* The sweep: an old upload goes, a new one stays; a directory left
     * empty goes too, and the next upload makes it again. */
    touch(path, 3600);
    CHECK_INT(blob_upload_sweep(b, clock_now_ms() - 60000, 0, &removed), 0);
    CHECK_INT(removed, 1);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(blob_upload_stat(b, "k1", id2, &size, &mtime), 0);
    CHECK_INT(blob_upload_sweep(b, clock_now_ms() + 1000, 0, &removed), 0);
    CHECK_INT(removed, 1);
    snprintf(path, sizeof(path), "%s/uploads/k1", dir);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(blob_upload_put(b, "k1", id, "again", 5, &mtime), 0);
    CHECK_INT(blob_upload_stat(b, "k1", id, &size, &mtime), 0);
    CHECK_INT(blob_upload_sweep(b, clock_now_ms() + 1000, 0, &removed), 0);
    blob_free(b);
}

/* OSS-style uploads: named by their object key's hash, never over an
 * existing one, kept by their own cutoff; the policy signature is bound
 * to the key it was issued to. */
static void oss_uploads(void)
{
    struct blob *b = NULL, *other = NULL;
    struct errmsg err = { 0 };
    struct blob_upload *u = NULL;
    char name[BLOB_UPLOAD_NAME_MAX], again[BLOB_UPLOAD_NAME_MAX], path[600];
    int64_t size = 0, mtime = 0, bytes = 0, oldest = 0;
    int count = 0, removed = 0;
    const char *id = "0190f5b2-7c1e-4d2a-9b3c-5e6f7a8b9c0d";
    unsigned char key2[32] = { 9 };
    CHECK_INT(blob_open(dir, key, &b, &err), 0);

    blob_oss_name("paddock-instant/k/u/a.png", name);
    CHECK_INT(strlen(name), 4 + 64);
    CHECK(strncmp(name, "oss-", 4) == 0);
    blob_oss_name("paddock-instant/k/u/a.png", again);
    CHECK_STR(again, name);
    blob_oss_name("paddock-instant/k/u/b.png", again);
    CHECK(strcmp(again, name) != 0);
    CHECK(blob_upload_names_valid("k1", name));
    CHECK(!blob_upload_names_valid("k1", "oss-../../x"));
    CHECK(!blob_upload_names_valid("k1", "oss-ABC"));

    /* Stored like an upload; a second one of that name is refused. */
    CHECK_INT(blob_upload_begin(b, "k1", name, &u), 0);
    CHECK_INT(blob_upload_write(u, "first", 5), 0);
    CHECK_INT(blob_upload_commit_new(u, &mtime), 0);
    blob_upload_free(u);
    CHECK_INT(blob_upload_begin(b, "k1", name, &u), 0);
    CHECK_INT(blob_upload_write(u, "second", 6), 0);
    CHECK_INT(blob_upload_commit_new(u, &mtime), ERR_CONFLICT);
    blob_upload_free(u);
    CHECK_INT(blob_upload_stat(b, "k1", name, &size, &mtime), 0);
    CHECK_INT(size, 5);
    CHECK_INT(blob_upload_stat(b, "k2", name, &size, &mtime), ERR_NOT_FOUND);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    DIR *d = opendir(tmp); /* neither temporary file is left */
    struct dirent *e;
    int left = 0;
    while (d && (e = readdir(d)) != NULL)
        left += strstr(e->d_name, "upload-oss-") != NULL;
    if (d)
        closedir(d);
    CHECK_INT(left, 0);

    /* Its own window: counted and kept by oss_since / oss_cutoff. */
    CHECK_INT(blob_upload_put(b, "k1", id, "hi", 2, &mtime), 0);
    snprintf(path, sizeof(path), "%s/uploads/k1/%s", dir, name);
    touch(path, 3600);
    int64_t now = clock_now_ms();
    CHECK_INT(blob_upload_usage(b, "k1", now - 60000, now - 7200000, &count,
                                &bytes, &oldest),
              0);
    CHECK_INT(count, 2);
    CHECK_INT(blob_upload_usage(b, "k1", now - 7200000, now - 60000, &count,
                                &bytes, &oldest),
              0);
    CHECK_INT(count, 1);
    CHECK_INT(bytes, 2);
    CHECK_INT(blob_upload_sweep(b, now - 60000, now - 7200000, &removed), 0);
    CHECK_INT(removed, 0);
    CHECK_INT(blob_upload_sweep(b, now - 7200000, now - 60000, &removed), 0);
    CHECK_INT(removed, 1);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(blob_upload_stat(b, "k1", id, &size, &mtime), 0);
    CHECK_INT(blob_upload_sweep(b, now + 1000, now + 1000, &removed), 0);

    /* Signatures. */
    struct buf sig = BUF_INIT;
    blob_oss_sign(b, "k1", "eyJwb2xpY3kiOjF9", &sig);
    CHECK_INT(sig.len, 44); /* base64 of 32 bytes */
    CHECK_INT(blob_oss_verify(b, "k1", "eyJwb2xpY3kiOjF9", sig.data), 0);
    CHECK_INT(blob_oss_verify(b, "k2", "eyJwb2xpY3kiOjF9", sig.data),
              ERR_BAD_SIGNATURE);
    CHECK_INT(blob_oss_verify(b, "k1", "eyJwb2xpY3kiOjJ9", sig.data),
              ERR_BAD_SIGNATURE);
    CHECK_INT(blob_oss_verify(b, "k1", "eyJwb2xpY3kiOjF9", ""),
              ERR_BAD_SIGNATURE);
    CHECK_INT(blob_oss_verify(b, "k1", "eyJwb2xpY3kiOjF9", NULL),
              ERR_BAD_SIGNATURE);
    CHECK_INT(blob_open(dir, key2, &other, &err), 0);
    CHECK_INT(blob_oss_verify(other, "k1", "eyJwb2xpY3kiOjF9", sig.data),
              ERR_BAD_SIGNATURE);
    buf_fini(&sig);
    blob_free(other);
    blob_free(b);
}

int main(void)
{
    unit_suite = "blob";
    if (!mkdtemp(dir))
        return 1;
    RUN(names);
    RUN(links);
    RUN(commit_and_open);
    RUN(tmp_sweep_keeps_live_renders);
    RUN(uploads);
    RUN(oss_uploads);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_END();
}
