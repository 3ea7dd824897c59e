/*
 * The address guard: which addresses a fetch may not reach on its own, and
 * the allow-list (--fetch-allow) that lets it reach some of them anyway.
 */
#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* An address, IPv4-mapped IPv6 already turned into IPv4 (4 bytes used). */
struct ip {
    int family; /* AF_INET or AF_INET6 */
    unsigned char b[16];
};

/* One CIDR range; the bits past `bits` are zero. */
struct range {
    struct ip ip;
    int bits;
};

struct net_allow {
    size_t n;
    struct range r[]; /* n entries */
};

/*
 * Ranges a fetch may not reach without an allow-list entry; the first match
 * decides. A row with embed >= 0 holds an IPv4 address at that byte offset
 * and is judged by it: a NAT64 or 6to4 gateway, or the kernel for a mapped
 * address, would carry the connection to that IPv4 address.
 */
static const struct blocked {
    int family;
    unsigned char prefix[16];
    int bits;
    int embed;
    const char *why;
} blocked[] = {
    /* "This network": Linux connects 0.0.0.0 to the local host. */
    { AF_INET, { 0 }, 8, -1, "unspecified" },
    { AF_INET, { 10 }, 8, -1, "private" },
    { AF_INET, { 100, 64 }, 10, -1, "CGNAT" },
    { AF_INET, { 127 }, 8, -1, "loopback" },
    { AF_INET, { 169, 254 }, 16, -1, "link-local" },
    { AF_INET, { 172, 16 }, 12, -1, "private" },
    /* IETF protocol assignments (DS-Lite, NAT64 discovery). */
    { AF_INET, { 192, 0, 0 }, 24, -1, "reserved" },
    { AF_INET, { 192, 168 }, 16, -1, "private" },
    /* Benchmarking; some clouds use it for internal services. */
    { AF_INET, { 198, 18 }, 15, -1, "reserved" },
    { AF_INET, { 224 }, 4, -1, "multicast" },
    { AF_INET, { 255, 255, 255, 255 }, 32, -1, "broadcast" },
    { AF_INET, { 240 }, 4, -1, "reserved" },
    { AF_INET6, { 0 }, 128, -1, "unspecified" },
    { AF_INET6, { [15] = 1 }, 128, -1, "loopback" },
    { AF_INET6, { [10] = 0xff, [11] = 0xff }, 96, 12, NULL },
    /* NAT64 well-known prefix, then its local-use prefix (RFC 8215),
     * whose embedding depends on the operator's prefix length. */
    { AF_INET6, { 0, 0x64, 0xff, 0x9b }, 96, 12, NULL },
    { AF_INET6, { 0, 0x64, 0xff, 0x9b, 0, 1 }, 48, -1, "private" },
    /* 6to4. */
    { AF_INET6, { 0x20, 0x02 }, 16, 2, NULL },
    /* IPv4-compatible (deprecated) and the rest of ::/96. */
    { AF_INET6, { 0 }, 96, -1, "reserved" },
    { AF_INET6, { 0xfc }, 7, -1, "private" },
    { AF_INET6, { 0xfe, 0x80 }, 10, -1, "link-local" },
    { AF_INET6, { 0xfe, 0xc0 }, 10, -1, "site-local" },
    { AF_INET6, { 0xff }, 8, -1, "multicast" },
};

static bool prefix_match(const unsigned char *a, const unsigned char *p,
                         int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, p, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (p[full] & mask);
}

/* Zero the bits of r past its prefix. */
static void range_mask(struct range *r)
{
    int len = r->ip.family == AF_INET ? 4 : 16;
    for (int i = 0; i < len; i++) {
        int keep = r->bits - 8 * i;
        if (keep <= 0)
            r->ip.b[i] = 0;
        else if (keep < 8)
            r->ip.b[i] &= (unsigned char)(0xff << (8 - keep));
    }
}

static const unsigned char v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

/* sa as a struct ip, a mapped IPv6 address as IPv4; false for a family
 * other than AF_INET and AF_INET6. */
static bool ip_from_sockaddr(const struct sockaddr *sa, struct ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        ip->family = AF_INET;
        memcpy(ip->b, &in.sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        const unsigned char *b = in6.sin6_addr.s6_addr;
        if (memcmp(b, v4_mapped, sizeof(v4_mapped)) == 0) {
            ip->family = AF_INET;
            memcpy(ip->b, b + 12, 4);
        } else {
            ip->family = AF_INET6;
            memcpy(ip->b, b, 16);
        }
        return true;
    }
    return false;
}

static const char *ip_blocked(const struct ip *ip)
{
    for (size_t i = 0; i < ARRAY_LEN(blocked); i++) {
        const struct blocked *r = &blocked[i];
        if (r->family != ip->family || !prefix_match(ip->b, r->prefix, r->bits))
            continue;
        if (r->embed < 0)
            return r->why;
        struct ip v4 = { .family = AF_INET };
        memcpy(v4.b, ip->b + r->embed, 4);
        return ip_blocked(&v4);
    }
    return NULL;
}

const char *net_addr_blocked(const struct sockaddr *sa)
{
    struct ip ip;
    if (!ip_from_sockaddr(sa, &ip))
        return "not IP";
    /* A mapped address was turned into IPv4 above; its table row stays for
     * the embedded forms that reach ip_blocked some other way. */
    return ip_blocked(&ip);
}

bool net_allow_admits(const struct net_allow *a, const struct sockaddr *sa)
{
    struct ip ip;
    if (!a || !ip_from_sockaddr(sa, &ip))
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct range *r = &a->r[i];
        if (r->ip.family == ip.family && prefix_match(ip.b, r->ip.b, r->bits))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ parsing */

/* Copy s into out[NET_CIDR_MAX + 4] for a message: printable ASCII only,
 * cut with "..." when longer than NET_CIDR_MAX. */
static void show_entry(const char *s, char *out)
{
    size_t n = 0;
    for (; s[n] && n < NET_CIDR_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (s[n]) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static int parse_range(const char *s, struct range *r, struct errmsg *err)
{
    char text[NET_CIDR_MAX + 1], shown[NET_CIDR_MAX + 4];
    size_t n = strlen(s);
    show_entry(s, shown);
    if (n == 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--fetch-allow entry \"\" is empty; expected an "
                          "address or a CIDR range such as 10.0.0.0/8");
    if (n > NET_CIDR_MAX)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--fetch-allow entry \"%s\" is longer than %d "
                          "bytes; expected a CIDR range such as 10.0.0.0/8",
                          shown, NET_CIDR_MAX);
    memcpy(text, s, n + 1);
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';

    memset(r, 0, sizeof(*r));
    int max;
    if (inet_pton(AF_INET, text, r->ip.b) == 1) {
        r->ip.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, text, r->ip.b) == 1) {
        r->ip.family = AF_INET6;
        max = 128;
    } else {
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--fetch-allow entry \"%s\" is not an IPv4 or IPv6 "
                          "address or CIDR range (such as 10.0.0.0/8)",
                          shown);
    }

    r->bits = max;
    if (slash) {
        const char *p = slash + 1;
        size_t digits = strspn(p, "0123456789");
        int bits = 0;
        for (size_t i = 0; i < digits && i < 3; i++)
            bits = bits * 10 + (p[i] - '0');
        r->bits = bits;
        if (digits == 0 || digits > 3 || p[digits] != '\0' || bits > max)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--fetch-allow entry \"%s\": the prefix length "
                              "must be a number from 0 to %d",
                              shown, max);
    }
    /* ::ffff:a.b.c.d/n is the IPv4 range it maps, as addresses are. */
    if (r->ip.family == AF_INET6 && r->bits >= 96 &&
        memcmp(r->ip.b, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(r->ip.b, r->ip.b + 12, 4);
        memset(r->ip.b + 4, 0, 12);
        r->ip.family = AF_INET;
        r->bits -= 96;
    }
    range_mask(r);
    return 0;
}

int net_allow_new(const char *const *cidrs, size_t n, struct net_allow **out,
                  struct errmsg *err)
{
    struct net_allow *a = NULL;
    int rc = 0;
    *out = NULL;
    if (n > NET_ALLOW_MAX) {
        rc = errmsg_set(err, ERR_INVALID_PARAMETER,
                        "--fetch-allow has %zu entries; at most %d are "
                        "accepted",
                        n, NET_ALLOW_MAX);
        goto out;
    }
    a = xcalloc(1, sizeof(*a) + n * sizeof(a->r[0]));
    for (size_t i = 0; i < n; i++) {
        rc = parse_range(cidrs[i] ? cidrs[i] : "", &a->r[i], err);
        if (rc < 0)
            goto out;
    }
    a->n = n;
    *out = a;
    a = NULL;
out:
    net_allow_free(a);
    return rc;
}

void net_allow_free(struct net_allow *a)
{
    free(a);
}
