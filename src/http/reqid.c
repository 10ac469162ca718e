/*
 * Request ids and W3C Trace Context.
 *
 * Random numbers come from xoshiro256** (Blackman and Vigna), one generator
 * per thread, seeded once from getrandom().  An id therefore costs a few
 * arithmetic instructions and no system call.  The generator is not a
 * cryptographic one: request ids and span ids need to be unique and
 * unguessable enough for correlation, not secret.  A forked child reseeds
 * (pthread_atfork bumps a generation counter), so parent and child never
 * hand out the same ids.
 *
 * traceparent parsing follows W3C Trace Context level 1, section 3.2 and
 * its versioning rules (section 4.3):
 *   - all fields are lower-case hex; upper case is invalid;
 *   - version ff is invalid; version 00 is exactly 55 characters;
 *   - a higher version is parsed by its first four fields: it must be at
 *     least 55 characters, and the flags must be followed by the end of
 *     the value or by '-' (what comes after belongs to that version);
 *   - an all-zero trace-id or parent-id is invalid.
 * We always send version 00.  A child keeps the trace-id, gets a fresh
 * parent-id, and keeps the flags we know (sampled 0x01, and level 2's
 * random-trace-id 0x02, which stays true because the trace-id is kept);
 * other flag bits are cleared, as level 1 asks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "http/reqid.h"

#define TP_FLAG_SAMPLED 0x01
#define TP_FLAGS_KNOWN  0x03

static const char hexdigits[] = "0123456789abcdef";

/* ---- random ------------------------------------------------------------ */

static _Thread_local uint64_t rng_state[4];
static _Thread_local unsigned rng_gen; /* fork generation seeded for; 0 = never */
static unsigned fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    fork_gen++;
}

static void register_atfork(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(void)
{
    uint64_t seed[4] = {0, 0, 0, 0};
    size_t got = 0;

    (void)pthread_once(&atfork_once, register_atfork);
    while (got < sizeof(seed)) {
        ssize_t r = getrandom((char *)seed + got, sizeof(seed) - got, 0);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    if (got < sizeof(seed)) {
        /* no getrandom (old kernel, seccomp): time, pid and addresses */
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
                     (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&got ^
                     (uint64_t)(uintptr_t)rng_state;
        for (int i = 0; i < 4; i++)
            seed[i] ^= splitmix64(&x);
    }
    /* run the seed through splitmix64 so that the state is never all zero */
    for (int i = 0; i < 4; i++) {
        uint64_t x = seed[i] + (uint64_t)i;
        rng_state[i] = splitmix64(&x);
    }
    if ((rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]) == 0)
        rng_state[0] = 1;
    rng_gen = fork_gen;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t pt_random_u64(void)
{
    if (rng_gen != fork_gen)
        rng_seed();
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* ---- request ids ------------------------------------------------------- */

bool pt_reqid_is_sane(struct pt_str id)
{
    if (id.len == 0 || id.len > PT_REQID_MAX)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void hex_u64(char *out, uint64_t v)
{
    for (int i = 15; i >= 0; i--) {
        out[i] = hexdigits[v & 0xf];
        v >>= 4;
    }
}

void pt_reqid_generate(char out[PT_REQID_GEN_LEN])
{
    _Static_assert(PT_REQID_GEN_LEN == 32, "two 64-bit words of hex");
    hex_u64(out, pt_random_u64());
    hex_u64(out + 16, pt_random_u64());
}

/* ---- traceparent ------------------------------------------------------- */

static int lchex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* n bytes from 2n lower-case hex characters; -1 on any other character. */
static int unhex(const char *p, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = lchex(p[2 * i]), lo = lchex(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static void to_hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[p[i] >> 4];
        out[2 * i + 1] = hexdigits[p[i] & 0xf];
    }
}

int pt_traceparent_parse(struct pt_str s, struct pt_traceparent *tp)
{
    /* "vv-" 32 "-" 16 "-" ff: dashes at 2, 35, 52 */
    struct pt_traceparent t;
    const char *p = s.ptr;

    if (s.len < PT_TRACEPARENT_LEN)
        return -1;
    if (unhex(p, &t.version, 1) != 0 || t.version == 0xff)
        return -1;
    if (t.version == 0 ? s.len != PT_TRACEPARENT_LEN
                       : s.len > PT_TRACEPARENT_LEN && p[PT_TRACEPARENT_LEN] != '-')
        return -1;
    if (p[2] != '-' || p[35] != '-' || p[52] != '-')
        return -1;
    if (unhex(p + 3, t.trace_id, 16) != 0 || unhex(p + 36, t.parent_id, 8) != 0 ||
        unhex(p + 53, &t.flags, 1) != 0)
        return -1;
    if (all_zero(t.trace_id, 16) || all_zero(t.parent_id, 8))
        return -1;
    *tp = t;
    return 0;
}

static void random_bytes_nonzero(uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = pt_random_u64();
            size_t k = n - i < 8 ? n - i : 8;
            memcpy(out + i, &r, k);
        }
    } while (all_zero(out, n));
}

void pt_traceparent_new(struct pt_traceparent *tp, bool sampled)
{
    tp->version = 0;
    random_bytes_nonzero(tp->trace_id, sizeof(tp->trace_id));
    random_bytes_nonzero(tp->parent_id, sizeof(tp->parent_id));
    tp->flags = sampled ? TP_FLAG_SAMPLED : 0;
}

void pt_traceparent_child(const struct pt_traceparent *in, struct pt_traceparent *out)
{
    struct pt_traceparent t;
    t.version = 0;
    memcpy(t.trace_id, in->trace_id, sizeof(t.trace_id));
    random_bytes_nonzero(t.parent_id, sizeof(t.parent_id));
    t.flags = in->flags & TP_FLAGS_KNOWN;
    *out = t; /* in and out may be the same */
}

void pt_traceparent_format(const struct pt_traceparent *tp, char out[PT_TRACEPARENT_LEN])
{
    to_hex(out, &tp->version, 1);
    out[2] = '-';
    to_hex(out + 3, tp->trace_id, 16);
    out[35] = '-';
    to_hex(out + 36, tp->parent_id, 8);
    out[52] = '-';
    to_hex(out + 53, &tp->flags, 1);
}

void pt_trace_id_hex(const struct pt_traceparent *tp, char out[32])
{
    to_hex(out, tp->trace_id, 16);
}
