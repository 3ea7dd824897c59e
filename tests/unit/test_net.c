/*
 * Unit tests of src/net: the address guard, allow-lists, and net_fetch over
 * real HTTP to a fixture server inside this process on 127.0.0.1. Nothing
 * leaves the machine: the redirects to 10.x prove the guard refuses them
 * before a socket exists.
 */
#include "../../src/net/net.h"
#include "unit.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-test-net-XXXXXX";
static char out_path[128];
static char base[64]; /* "http://127.0.0.1:PORT" */
static unsigned port;
static atomic_bool quitting;

#define BODY_BYTES 5000
static unsigned char body[BODY_BYTES];

/* The cap most cases fetch under. */
#define CAP 1000

/* ------------------------------------------------------------ fixture */

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/*
 * The fixture: a plain HTTP/1.1 server written here on raw sockets, a
 * thread per connection (so /slow can stall one while others go on), one
 * request per connection (Connection: close), every answer written byte
 * for byte: what libcurl sees is exactly what a case means it to see.
 */
static int listen_fd = -1;

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

/* A whole answer with Content-Length (and Location when given). */
static void reply(int fd, unsigned status, const void *p, size_t n,
                  const char *location)
{
    char head[512];
    int len = snprintf(head, sizeof(head),
                       "HTTP/1.1 %u X\r\nContent-Length: %zu\r\n%s%s%s"
                       "Connection: close\r\n\r\n",
                       status, n, location ? "Location: " : "",
                       location ? location : "", location ? "\r\n" : "");
    send_all(fd, head, (size_t)len);
    send_all(fd, p, n);
}

/* /big-chunked: the whole body in chunks of 500, no Content-Length. */
static void reply_chunked(int fd)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                               "chunked\r\nConnection: close\r\n\r\n";
    send_all(fd, head, sizeof(head) - 1);
    for (size_t pos = 0; pos < BODY_BYTES; pos += 500) {
        size_t n = BODY_BYTES - pos < 500 ? BODY_BYTES - pos : 500;
        char size[16];
        int len = snprintf(size, sizeof(size), "%zx\r\n", n);
        send_all(fd, size, (size_t)len);
        send_all(fd, body + pos, n);
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
}

/* /slow: ten bytes of a chunked body, then nothing for up to 3 s. */
static void reply_slow(int fd)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                               "chunked\r\nConnection: close\r\n\r\na\r\n";
    send_all(fd, head, sizeof(head) - 1);
    send_all(fd, body, 10);
    send_all(fd, "\r\n", 2);
    for (int i = 0; i < 300 && !atomic_load(&quitting); i++)
        sleep_ms(10);
}

static void answer(int fd, const char *url)
{
    char loc[128];
    int n = 0;

    if (strcmp(url, "/ok") == 0)
        return reply(fd, 200, body, CAP, NULL);
    if (strcmp(url, "/big") == 0)
        return reply(fd, 200, body, BODY_BYTES, NULL);
    if (strcmp(url, "/big-chunked") == 0)
        return reply_chunked(fd);
    if (strcmp(url, "/slow") == 0)
        return reply_slow(fd);
    if (sscanf(url, "/redirect-chain/%d", &n) == 1) {
        if (n <= 0)
            return reply(fd, 200, body, CAP, NULL);
        snprintf(loc, sizeof(loc), "/redirect-chain/%d", n - 1);
        return reply(fd, 302, "", 0, loc);
    }
    if (strcmp(url, "/redirect-to-private") == 0)
        return reply(fd, 302, "", 0,
                     "http://10.255.255.1/x.png?signature=SECRET");
    if (strcmp(url, "/redirect-to-mapped") == 0)
        return reply(fd, 302, "", 0, "http://[::ffff:10.0.0.1]/x.png");
    if (strcmp(url, "/redirect-to-127.0.0.2") == 0) {
        snprintf(loc, sizeof(loc), "http://127.0.0.2:%u/ok", port);
        return reply(fd, 302, "", 0, loc);
    }
    if (strcmp(url, "/redirect-to-loopback-allowed") == 0) {
        snprintf(loc, sizeof(loc), "%s/ok", base);
        return reply(fd, 302, "", 0, loc);
    }
    if (strcmp(url, "/redirect-to-ftp") == 0)
        return reply(fd, 302, "", 0, "ftp://127.0.0.1/x.png");
    if (strcmp(url, "/redirect-to-file") == 0)
        return reply(fd, 302, "", 0, "file:///etc/passwd");
    reply(fd, 404, "not here", 8, NULL);
}

/* One connection: read the head (GET only, no body), answer, close. */
static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char head[4096];
    size_t got = 0;
    while (got < sizeof(head) - 1) {
        ssize_t r = recv(fd, head + got, sizeof(head) - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        head[got] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    head[got] = '\0';
    char url[1024] = "";
    if (sscanf(head, "%*s %1023s", url) == 1) {
        char *q = strchr(url, '?');
        if (q)
            *q = '\0';
        answer(fd, url);
    }
    shutdown(fd, SHUT_WR);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (atomic_load(&quitting))
                return NULL;
            continue;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, serve_one, (void *)(intptr_t)fd) != 0)
            close(fd);
        else
            pthread_detach(t);
    }
}

static pthread_t acceptor;

static bool fixture_start(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 ||
        bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(listen_fd, 64) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&sin, &len) < 0)
        return false;
    port = ntohs(sin.sin_port);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
    return pthread_create(&acceptor, NULL, accept_loop, NULL) == 0;
}

/* Stop accepting; connections still open end by themselves (/slow sees
 * `quitting`). */
static void fixture_stop(void)
{
    atomic_store(&quitting, true);
    shutdown(listen_fd, SHUT_RDWR);
    pthread_join(acceptor, NULL);
    close(listen_fd);
}

/* ------------------------------------------------------------ helpers */

static struct net_allow *allow(const char *cidr)
{
    struct net_allow *a = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(net_allow_new(&cidr, 1, &a, &err), 0);
    return a;
}

static struct net_fetch_opts opts(const struct net_allow *a)
{
    struct net_fetch_opts o = {
        .allow = a, .max_bytes = CAP, .timeout_ms = 5000, .max_redirects = 3
    };
    return o;
}

/* Fetch base+path (a path starting with '/'), or the URL `path`, into
 * out_path. */
static int get(const char *path, const struct net_fetch_opts *o, int64_t *size,
               struct errmsg *err)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", base, path);
    memset(err, 0, sizeof(*err));
    *size = -1;
    return net_fetch(path[0] == '/' ? url : path, out_path, o, size, err);
}

static bool has(const struct errmsg *e, const char *s)
{
    if (strstr(e->text, s))
        return true;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", e->text, s);
    return false;
}

static bool file_gone(void)
{
    return access(out_path, F_OK) != 0;
}

/* The file holds exactly body[0..n). */
static bool file_is_body(size_t n)
{
    unsigned char got[BODY_BYTES + 1];
    int fd = open(out_path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, got, sizeof(got));
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600 &&
              r == (ssize_t)n && memcmp(got, body, n) == 0;
    close(fd);
    return ok;
}

/* ------------------------------------------------------------- guard */

static void sockaddr_of(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        in6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
            fprintf(stderr, "  bad test address %s\n", text);
    }
}

static const struct {
    const char *addr;
    const char *why; /* NULL: public */
} classes[] = {
    { "0.0.0.0", "unspecified" },
    { "0.1.2.3", "unspecified" },
    { "10.0.0.1", "private" },
    { "10.255.255.255", "private" },
    { "100.64.0.1", "CGNAT" },
    { "100.127.255.254", "CGNAT" },
    { "100.128.0.1", NULL },
    { "127.0.0.1", "loopback" },
    { "127.255.0.9", "loopback" },
    { "169.254.169.254", "link-local" },
    { "172.16.0.1", "private" },
    { "172.31.255.255", "private" },
    { "172.32.0.1", NULL },
    { "172.15.255.255", NULL },
    { "192.168.1.1", "private" },
    { "192.169.0.1", NULL },
    { "224.0.0.1", "multicast" },
    { "239.255.255.250", "multicast" },
    { "255.255.255.255", "broadcast" },
    { "240.0.0.1", "reserved" },
    { "8.8.8.8", NULL },
    { "1.1.1.1", NULL },
    { "93.184.216.34", NULL },
    { "::", "unspecified" },
    { "::1", "loopback" },
    { "fc00::1", "private" },
    { "fd12:3456::1", "private" },
    { "fe80::1", "link-local" },
    { "febf::1", "link-local" },
    { "fec0::1", "site-local" },
    { "ff02::1", "multicast" },
    { "ff05::2", "multicast" },
    { "2001:4860:4860::8888", NULL },
    { "2001:4860::8888", NULL },
    { "2606:4700::1111", NULL },
    { "::ffff:127.0.0.1", "loopback" },
    { "::ffff:10.1.2.3", "private" },
    { "::ffff:169.254.169.254", "link-local" },
    { "::ffff:192.168.0.1", "private" },
    { "::ffff:172.16.5.4", "private" },
    { "::ffff:100.64.0.1", "CGNAT" },
    { "::ffff:224.0.0.1", "multicast" },
    { "::ffff:0.0.0.0", "unspecified" },
    { "::ffff:255.255.255.255", "broadcast" },
    { "::ffff:8.8.8.8", NULL },
    { "64:ff9b::10.0.0.1", "private" },
    { "64:ff9b::8.8.8.8", NULL },
    { "2002:7f00:1::", "loopback" },
    { "2002:0808:0808::", NULL },
    { "::127.0.0.1", "reserved" },
};

static void classify(void)
{
    for (size_t i = 0; i < ARRAY_LEN(classes); i++) {
        struct sockaddr_storage ss;
        sockaddr_of(classes[i].addr, &ss);
        const char *why = net_addr_blocked((struct sockaddr *)&ss);
        const char *want = classes[i].why;
        if (want ? !why || strcmp(why, want) != 0 : why != NULL) {
            fprintf(stderr, "  %s: got %s, expected %s\n", classes[i].addr,
                    why ? why : "public", want ? want : "public");
            unit_failed_checks++;
        }
    }
    struct sockaddr un = { .sa_family = AF_UNIX };
    CHECK_STR(net_addr_blocked(&un), "not IP");
}

static const struct {
    const char *cidr;
    const char *addr;
    bool admits;
} admits[] = {
    { "127.0.0.1/32", "127.0.0.1", true },
    { "127.0.0.1/32", "127.0.0.2", false },
    { "127.0.0.1", "127.0.0.1", true },
    { "127.0.0.1/32", "::ffff:127.0.0.1", true },
    { "10.0.0.0/8", "10.200.1.1", true },
    { "10.0.0.0/8", "11.0.0.1", false },
    { "10.1.2.3/8", "10.9.9.9", true }, /* host bits ignored */
    { "172.16.0.0/12", "172.31.0.1", true },
    { "172.16.0.0/12", "172.32.0.1", false },
    { "192.168.1.0/25", "192.168.1.127", true },
    { "192.168.1.0/25", "192.168.1.128", false },
    { "0.0.0.0/0", "10.0.0.1", true },
    { "0.0.0.0/0", "::1", false },
    { "::1/128", "::1", true },
    { "::1", "::1", true },
    { "::1/128", "127.0.0.1", false },
    { "fd00::/8", "fd12::1", true },
    { "fd00::/8", "fc00::1", false },
    { "::ffff:10.0.0.0/104", "10.3.3.3", true },
    { "::ffff:10.0.0.0/104", "::ffff:10.3.3.3", true },
};

static void allow_list(void)
{
    for (size_t i = 0; i < ARRAY_LEN(admits); i++) {
        struct net_allow *a = allow(admits[i].cidr);
        struct sockaddr_storage ss;
        sockaddr_of(admits[i].addr, &ss);
        if (a &&
            net_allow_admits(a, (struct sockaddr *)&ss) != admits[i].admits) {
            fprintf(stderr, "  %s %s %s\n", admits[i].cidr,
                    admits[i].admits ? "does not admit" : "admits",
                    admits[i].addr);
            unit_failed_checks++;
        }
        net_allow_free(a);
    }
    /* Several entries, and no list at all. */
    const char *many[] = { "10.0.0.0/8", "::1/128", "192.168.0.0/16" };
    struct net_allow *a = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(net_allow_new(many, 3, &a, &err), 0);
    struct sockaddr_storage ss;
    sockaddr_of("192.168.7.7", &ss);
    CHECK(net_allow_admits(a, (struct sockaddr *)&ss));
    CHECK(!net_allow_admits(NULL, (struct sockaddr *)&ss));
    net_allow_free(a);
    CHECK_INT(net_allow_new(NULL, 0, &a, &err), 0);
    CHECK(!net_allow_admits(a, (struct sockaddr *)&ss));
    net_allow_free(a);
    net_allow_free(NULL);
}

static const struct {
    const char *cidr;
    const char *message; /* a part of the message */
} bad_cidrs[] = {
    { "10.0.0.0/33", "\"10.0.0.0/33\": the prefix length must be a number "
                     "from 0 to 32" },
    { "::1/129", "\"::1/129\": the prefix length must be a number from 0 to "
                 "128" },
    { "abc", "\"abc\" is not an IPv4 or IPv6 address" },
    { "", "entry \"\" is empty" },
    { "10.0.0.0/", "\"10.0.0.0/\": the prefix length" },
    { "10.0.0.0/-1", "\"10.0.0.0/-1\": the prefix length" },
    { "10.0.0.0/8x", "\"10.0.0.0/8x\": the prefix length" },
    { "10.0.0.0/0008", "\"10.0.0.0/0008\": the prefix length" },
    { "10.0.0/8", "\"10.0.0/8\" is not an IPv4" },
    { "10.0.0.0 /8", "is not an IPv4" },
    { "1.2.3.4.5", "is not an IPv4" },
    { "fe80::1%eth0", "is not an IPv4" },
    { "0123456789012345678901234567890123456789012345678901234567890123456789",
      "is longer than 64 bytes" },
};

static void allow_parse_errors(void)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_cidrs); i++) {
        struct net_allow *a = (struct net_allow *)&a; /* must become NULL */
        struct errmsg err = { 0 };
        const char *list[] = { "127.0.0.1/32", bad_cidrs[i].cidr };
        CHECK_INT(net_allow_new(list, 2, &a, &err), ERR_INVALID_PARAMETER);
        CHECK(a == NULL);
        CHECK_INT(err.code, ERR_INVALID_PARAMETER);
        CHECK(has(&err, bad_cidrs[i].message));
    }
}

/* ------------------------------------------------------------ fetches */

static void loopback_guard(void)
{
    struct errmsg err;
    int64_t size;
    struct net_fetch_opts o = opts(NULL);
    /* Without an allow-list: refused, naming the address. */
    CHECK_INT(get("/ok", &o, &size, &err), ERR_INVALID_URL);
    CHECK_INT(err.code, ERR_INVALID_URL);
    CHECK(has(&err, "address 127.0.0.1 is loopback and not in --fetch-allow"));
    CHECK(has(&err, base));
    CHECK(file_gone());
    /* A host name is resolved and its address judged. */
    char url[128];
    snprintf(url, sizeof(url), "http://localhost:%u/ok", port);
    CHECK_INT(get(url, &o, &size, &err), ERR_INVALID_URL);
    CHECK(has(&err, "is loopback"));

    /* 127.0.0.2/32 does not admit 127.0.0.1. */
    struct net_allow *other = allow("127.0.0.2/32");
    o.allow = other;
    CHECK_INT(get("/ok", &o, &size, &err), ERR_INVALID_URL);
    CHECK(has(&err, "address 127.0.0.1 is loopback"));
    net_allow_free(other);

    struct net_allow *a = allow("127.0.0.1/32");
    o.allow = a;
    CHECK_INT(get("/ok", &o, &size, &err), 0);
    CHECK_INT(size, CAP);
    CHECK(file_is_body(CAP));
    /* A second fetch truncates the file. */
    CHECK_INT(get("/redirect-chain/0", &o, &size, &err), 0);
    CHECK(file_is_body(CAP));
    net_allow_free(a);
}

static void http_errors(void)
{
    struct net_allow *a = allow("127.0.0.0/8");
    struct net_fetch_opts o = opts(a);
    struct errmsg err;
    int64_t size;
    char url[256];

    /* 404; neither the query nor the user info reach the message. */
    snprintf(url, sizeof(url),
             "http://user:hunter2@127.0.0.1:%u/missing.png?signature=SECRET"
             "#frag",
             port);
    CHECK_INT(get(url, &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "HTTP 404"));
    char want[128];
    snprintf(want, sizeof(want), "http://127.0.0.1:%u/missing.png: HTTP 404",
             port);
    CHECK_STR(err.text, want);
    CHECK(!strstr(err.text, "SECRET") && !strstr(err.text, "hunter2"));
    CHECK(file_gone());

    /* A closed port. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/ok", ntohs(sin.sin_port));
    CHECK_INT(get(url, &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "could not connect (Connection refused)"));
    CHECK(file_gone());
    net_allow_free(a);
}

static void size_cap(void)
{
    struct net_allow *a = allow("127.0.0.1");
    struct net_fetch_opts o = opts(a);
    struct errmsg err;
    int64_t size;

    /* With Content-Length: refused early. */
    CHECK_INT(get("/big", &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "/big: larger than 1000 bytes"));
    CHECK(file_gone());
    /* Without: counted as it arrives. */
    CHECK_INT(get("/big-chunked", &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "/big-chunked: larger than 1000 bytes"));
    CHECK(file_gone());
    /* Exactly the cap is fine. */
    o.max_bytes = BODY_BYTES;
    CHECK_INT(get("/big-chunked", &o, &size, &err), 0);
    CHECK_INT(size, BODY_BYTES);
    CHECK(file_is_body(BODY_BYTES));
    o.max_bytes = BODY_BYTES - 1;
    CHECK_INT(get("/big", &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "larger than 4999 bytes"));
    o.max_bytes = LIMIT_IMAGE_BYTES;
    CHECK_INT(get("/big", &o, &size, &err), 0);
    CHECK_INT(size, BODY_BYTES);
    net_allow_free(a);
}

static void slow_timeout(void)
{
    struct net_allow *a = allow("127.0.0.1");
    struct net_fetch_opts o = opts(a);
    struct errmsg err;
    int64_t size;
    o.timeout_ms = 300;
    int64_t t0 = clock_mono_ms();
    CHECK_INT(get("/slow", &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "/slow: no complete answer within 300 ms"));
    CHECK(clock_mono_ms() - t0 < 2000);
    CHECK(file_gone());
    net_allow_free(a);
}

static void redirects(void)
{
    struct net_allow *a = allow("127.0.0.1/32");
    struct net_fetch_opts o = opts(a);
    struct errmsg err;
    int64_t size;

    CHECK_INT(get("/redirect-chain/3", &o, &size, &err), 0);
    CHECK(file_is_body(CAP));
    CHECK_INT(get("/redirect-chain/4", &o, &size, &err),
              ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "more than 3 redirects"));
    CHECK(file_gone());
    o.max_redirects = 0;
    CHECK_INT(get("/redirect-chain/1", &o, &size, &err),
              ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "more than 0 redirects"));
    o.max_redirects = 3;

    CHECK_INT(get("/redirect-to-loopback-allowed", &o, &size, &err), 0);
    CHECK_INT(size, CAP);

    /* Refused before a socket exists: no waiting on an unroutable 10.x. */
    int64_t t0 = clock_mono_ms();
    CHECK_INT(get("/redirect-to-private", &o, &size, &err), ERR_INVALID_URL);
    CHECK(clock_mono_ms() - t0 < 1000);
    CHECK(has(&err, "/redirect-to-private (redirected to "
                    "http://10.255.255.1/x.png): address 10.255.255.1 is "
                    "private and not in --fetch-allow"));
    CHECK(!strstr(err.text, "SECRET"));
    CHECK(file_gone());
    CHECK_INT(get("/redirect-to-mapped", &o, &size, &err), ERR_INVALID_URL);
    CHECK(has(&err, "address ::ffff:10.0.0.1 is private"));

    /* The allow-list is checked again after the redirect: 127.0.0.2 would
     * be "connection refused" (nothing listens there) if it were tried. */
    CHECK_INT(get("/redirect-to-127.0.0.2", &o, &size, &err), ERR_INVALID_URL);
    CHECK(has(&err, "address 127.0.0.2 is loopback"));

    /* Redirects to other schemes. */
    CHECK_INT(get("/redirect-to-ftp", &o, &size, &err), ERR_INVALID_URL);
    CHECK(has(&err, "scheme other than http or https"));
    CHECK_INT(get("/redirect-to-file", &o, &size, &err), ERR_INVALID_URL);
    CHECK(file_gone());
    net_allow_free(a);
}

static void proxy_ignored(void)
{
    /* A proxy from the environment would reach 10.x for us; it is not
     * used, so the guard sees 10.255.255.1 itself. */
    struct net_allow *a = allow("127.0.0.1/32");
    struct net_fetch_opts o = opts(a);
    struct errmsg err;
    int64_t size;
    setenv("http_proxy", base, 1);
    setenv("ALL_PROXY", base, 1);
    CHECK_INT(get("http://10.255.255.1/ok", &o, &size, &err), ERR_INVALID_URL);
    CHECK(has(&err, "address 10.255.255.1 is private"));
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    net_allow_free(a);
}

static void schemes(void)
{
    struct net_allow *a = allow("127.0.0.1/32");
    struct net_fetch_opts o = opts(a);
    struct errmsg err;
    int64_t size;
    static const char *const refused[] = {
        "ftp://127.0.0.1/x.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "127.0.0.1/x.png",
        "",
        "HTTP:/x",
        "http://127.0.0.1/a b",
        "http://127.0.0.1/a\x01b",
    };
    for (size_t i = 0; i < ARRAY_LEN(refused); i++) {
        CHECK_INT(get(refused[i], &o, &size, &err), ERR_INVALID_URL);
        CHECK(file_gone());
    }
    CHECK_INT(get("ftp://u:p@127.0.0.1/x.png?k=v", &o, &size, &err),
              ERR_INVALID_URL);
    CHECK_STR(err.text, "ftp://127.0.0.1/x.png: only http, https and "
                        "data:image URIs are fetched");
    /* Upper-case schemes are schemes. */
    char url[128];
    snprintf(url, sizeof(url), "HTTP://127.0.0.1:%u/ok", port);
    CHECK_INT(get(url, &o, &size, &err), 0);
    /* Bad options are the caller's bug. */
    o.max_bytes = 0;
    CHECK_INT(get("/ok", &o, &size, &err), ERR_INVALID_PARAMETER);
    net_allow_free(a);
}

static void data_uris(void)
{
    struct net_fetch_opts o = opts(NULL);
    struct errmsg err;
    int64_t size;

    /* "hello world" */
    CHECK_INT(get("data:image/png;base64,aGVsbG8gd29ybGQ=", &o, &size, &err),
              0);
    CHECK_INT(size, 11);
    char got[32] = { 0 };
    int fd = open(out_path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, got, sizeof(got)) == 11);
    close(fd);
    CHECK_STR(got, "hello world");
    CHECK_INT(get("DATA:IMAGE/JPEG;BASE64,aGk=", &o, &size, &err), 0);
    CHECK_INT(size, 2);
    CHECK_INT(get("data:image/webp;base64,aA==", &o, &size, &err), 0);
    CHECK_INT(size, 1);

    /* The whole body round-trips through a larger payload. */
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = BODY_BYTES, len = 0;
    char *uri = xmalloc(32 + (n + 2) / 3 * 4);
    len = (size_t)snprintf(uri, 32, "data:image/png;base64,");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)body[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)body[i + 1] << 8;
        if (i + 2 < n)
            v |= body[i + 2];
        uri[len++] = b64[v >> 18 & 63];
        uri[len++] = b64[v >> 12 & 63];
        uri[len++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        uri[len++] = i + 2 < n ? b64[v & 63] : '=';
    }
    uri[len] = '\0';
    o.max_bytes = BODY_BYTES;
    CHECK_INT(get(uri, &o, &size, &err), 0);
    CHECK_INT(size, BODY_BYTES);
    CHECK(file_is_body(BODY_BYTES));
    /* Over the cap. */
    o.max_bytes = BODY_BYTES - 1;
    CHECK_INT(get(uri, &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
    CHECK(has(&err, "data:image/png: larger than 4999 bytes"));
    CHECK(file_gone());
    free(uri);
    o.max_bytes = CAP;

    /* Other media types, and data: where only http is accepted. */
    CHECK_INT(get("data:text/html;base64,aGk=", &o, &size, &err),
              ERR_INVALID_URL);
    CHECK(has(&err, "data:text/html: a data: URI must be image/jpeg"));
    CHECK_INT(get("data:image/gif;base64,aGk=", &o, &size, &err),
              ERR_INVALID_URL);
    CHECK_INT(get("data:image/png,hi", &o, &size, &err), ERR_INVALID_URL);
    o.http_only = true;
    CHECK_INT(get("data:image/png;base64,aGk=", &o, &size, &err),
              ERR_INVALID_URL);
    CHECK(has(&err, "images only"));
    o.http_only = false;

    /* Bad base64. */
    static const struct {
        const char *uri, *why;
    } bad[] = {
        { "data:image/png;base64,", "empty" },
        { "data:image/png;base64,aGk", "multiple of 4" },
        { "data:image/png;base64,a=Gk", "outside" },
        { "data:image/png;base64,aG!k", "outside" },
        { "data:image/png;base64,aGk=aGk=", "outside" },
        { "data:image/png;base64,aG k", "outside" },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        CHECK_INT(get(bad[i].uri, &o, &size, &err), ERR_INPUT_DOWNLOAD_FAILED);
        CHECK(has(&err, bad[i].why));
        CHECK(file_gone());
    }
}

struct stopper {
    atomic_bool *flag;
    int after_ms;
};

static void *stop_later(void *p)
{
    struct stopper *s = p;
    sleep_ms(s->after_ms);
    atomic_store(s->flag, true);
    return NULL;
}

static void stop_flag(void)
{
    struct net_allow *a = allow("127.0.0.1");
    struct net_fetch_opts o = opts(a);
    atomic_bool stop = false;
    struct errmsg err;
    int64_t size;
    o.stop = &stop;

    struct stopper s = { &stop, 200 };
    pthread_t t;
    int64_t t0 = clock_mono_ms();
    CHECK(pthread_create(&t, NULL, stop_later, &s) == 0);
    CHECK_INT(get("/slow", &o, &size, &err), ERR_STOPPED);
    int64_t took = clock_mono_ms() - t0;
    pthread_join(t, NULL);
    CHECK(took >= 200 && took < 2500); /* progress runs ~1/s */
    CHECK(has(&err, "/slow: stopped"));
    CHECK(file_gone());
    /* Already set: nothing starts. */
    CHECK_INT(get("/ok", &o, &size, &err), ERR_STOPPED);
    CHECK_INT(get("data:image/png;base64,aGk=", &o, &size, &err), ERR_STOPPED);
    CHECK(file_gone());
    net_allow_free(a);
}

/* Several threads fetch at once, each into its own file. */
struct parallel {
    const struct net_allow *allow;
    char path[160];
    int rc;
    int64_t size;
};

static void *fetch_one(void *p)
{
    struct parallel *w = p;
    struct net_fetch_opts o = opts(w->allow);
    struct errmsg err = { 0 };
    char url[128];
    snprintf(url, sizeof(url), "%s/redirect-chain/2", base);
    w->rc = net_fetch(url, w->path, &o, &w->size, &err);
    return NULL;
}

static void concurrent(void)
{
    struct net_allow *a = allow("127.0.0.1/32");
    struct parallel w[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (struct parallel){ .allow = a, .rc = 1 };
        snprintf(w[i].path, sizeof(w[i].path), "%s/p%d", dir, i);
        CHECK(pthread_create(&t[i], NULL, fetch_one, &w[i]) == 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(w[i].rc, 0);
        CHECK_INT(w[i].size, CAP);
        unlink(w[i].path);
    }
    net_allow_free(a);
}

int main(void)
{
    unit_suite = "net";
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir))
        return 1;
    snprintf(out_path, sizeof(out_path), "%s/input", dir);
    for (size_t i = 0; i < BODY_BYTES; i++)
        body[i] = (unsigned char)(i * 7 + 3);
    struct errmsg err = { 0 };
    if (net_global_init(&err) != 0) {
        fprintf(stderr, "%s\n", errmsg_text(&err));
        return 1;
    }
    if (!fixture_start() || !port) {
        fprintf(stderr, "cannot start the fixture server\n");
        return 1;
    }

    RUN(classify);
    RUN(allow_list);
    RUN(allow_parse_errors);
    RUN(loopback_guard);
    RUN(http_errors);
    RUN(size_cap);
    RUN(slow_timeout);
    RUN(redirects);
    RUN(proxy_ignored);
    RUN(schemes);
    RUN(data_uris);
    RUN(stop_flag);
    RUN(concurrent);

    fixture_stop();
    net_global_fini();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_END();
}
