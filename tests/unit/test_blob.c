/* Unit tests of src/blob: names, signed links, durable commit. */
#include "../../src/blob/blob.h"
#include "unit.h"

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

int main(void)
{
    unit_suite = "blob";
    if (!mkdtemp(dir))
        return 1;
    RUN(names);
    RUN(links);
    RUN(commit_and_open);
    RUN(tmp_sweep_keeps_live_renders);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_END();
}
