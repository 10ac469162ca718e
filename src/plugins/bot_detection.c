/*
 * bot-detection (SPEC §3): refuse requests by User-Agent, with regular
 * expressions (PCRE2, JIT-compiled, case-insensitive, unanchored: a
 * pattern matches anywhere in the value).
 *
 *   plugins:
 *     bot-detection:
 *       deny:  ["^python-requests/", "badbot"]
 *       allow: ["^MyMonitor/"]        # allow wins over deny and the built-in list
 *       builtin: true                 # also refuse well-known crawlers (default)
 *
 * As in Kong, a small built-in list of self-declared crawlers and scrapers
 * (BUILTIN below) is on by default; `allow` exempts from it, `builtin:
 * false` switches it off.  Generic HTTP clients (curl, wget, language
 * libraries) are not in it: APIs are called by those.  A request without a
 * User-Agent passes.  Refusal: 403, problem type `forbidden`.
 *
 * A pattern that needs more than MATCH_LIMIT backtracking steps on some
 * value counts as not matching (and is logged, rate-limited), so a
 * pathological pattern cannot stall a worker.
 */
#include <pthread.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/schema.h"
#include "core/log.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"

#define MATCH_LIMIT 100000u

/* Self-declared crawlers, archivers, SEO and AI scrapers.  Keep it short and uncontroversial. */
static const char BUILTIN[] =
    "\\b(?:googlebot|bingbot|slurp|duckduckbot|baiduspider|yandex(?:bot|images)|sogou|exabot|"
    "ia_archiver|archive\\.org_bot|facebookexternalhit|petalbot|bytespider|ahrefsbot|"
    "semrushbot|mj12bot|dotbot|blexbot|seznambot|dataforseobot|gptbot|ccbot|claudebot|"
    "perplexitybot|amazonbot|applebot|scrapy)\\b|\\b(?:web)?crawler\\b|\\bspider\\b";

struct regex_list {
    pcre2_code **re;
    size_t n;
};

struct bot_detection {
    struct regex_list allow, deny;
    pcre2_code *builtin; /* NULL when switched off */
    pcre2_match_context *mctx;
};

struct options {
    const struct pt_conf_node *allow, *deny;
    bool builtin;
};

static const struct pt_conf_key keys[] = {
    PT_CONF_NODE("allow", struct options, allow),
    PT_CONF_NODE("deny", struct options, deny),
    PT_CONF_BOOL("builtin", struct options, builtin, "true"),
    {0},
};

static pcre2_code *compile(const char *src, size_t len, int *code, PCRE2_SIZE *off)
{
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, len, PCRE2_CASELESS, code, off, NULL);
    if (re != NULL)
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT the interpreter runs */
    return re;
}

static int regexes(struct pt_conf_ctx *c, const char *opt, const struct pt_conf_node *seq,
                   struct regex_list *out)
{
    out->re = NULL;
    out->n = 0;
    if (seq == NULL || pt_conf_is_null(seq))
        return 0;
    if (pt_conf_expect_seq(c, opt, seq) != 0)
        return -1;
    out->re = pt_arena_calloc(c->a, (seq->seq.n + 1) * sizeof(*out->re));
    if (out->re == NULL) {
        pt_conf_error(c, seq, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < seq->seq.n; i++) {
        const struct pt_conf_node *n = seq->seq.items[i];
        const char *s;
        if (pt_conf_get_string(c, opt, n, &s) != 0) {
            rc = -1;
            continue;
        }
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = compile(s, n->scalar.len, &code, &off);
        if (re == NULL) {
            PCRE2_UCHAR msg[256];
            if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
                snprintf((char *)msg, sizeof(msg), "error %d", code);
            pt_conf_error_at(c, n, off, "%s: invalid regular expression: %s", opt, (char *)msg);
            rc = -1;
            continue;
        }
        out->re[out->n++] = re;
    }
    return rc;
}

static void destroy(void *state)
{
    struct bot_detection *b = state;
    for (size_t i = 0; i < b->allow.n; i++)
        pcre2_code_free(b->allow.re[i]);
    for (size_t i = 0; i < b->deny.n; i++)
        pcre2_code_free(b->deny.re[i]);
    pcre2_code_free(b->builtin);
    pcre2_match_context_free(b->mctx);
}

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct options o = {0};
    struct bot_detection *b = pt_arena_calloc(c->a, sizeof(*b));
    if (b == NULL)
        return -1;
    *state = b; /* destroy() releases what was compiled, also on failure */
    int rc = pt_conf_apply(c, keys, opts, &o, "bot-detection", NULL);
    if (regexes(c, "allow", o.allow, &b->allow) != 0)
        rc = -1;
    if (regexes(c, "deny", o.deny, &b->deny) != 0)
        rc = -1;
    b->mctx = pcre2_match_context_create(NULL);
    if (b->mctx == NULL) {
        destroy(b);
        return -1;
    }
    pcre2_set_match_limit(b->mctx, MATCH_LIMIT);
    if (o.builtin) {
        int code;
        PCRE2_SIZE off;
        b->builtin = compile(BUILTIN, sizeof(BUILTIN) - 1, &code, &off);
        PT_BUG_ON(b->builtin == NULL);
    }
    if (rc != 0)
        destroy(b);
    return rc;
}

/* One match data per thread (one ovector pair is all we need), freed at thread exit. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void md_key_init(void)
{
    (void)pthread_key_create(&md_key, md_free);
}

static pcre2_match_data *match_data(void)
{
    pthread_once(&md_once, md_key_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md == NULL) {
        md = pcre2_match_data_create(1, NULL);
        if (md != NULL && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

static bool matches(const struct bot_detection *b, const pcre2_code *re, struct pt_str ua,
                    pcre2_match_data *md)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)(ua.ptr != NULL ? ua.ptr : ""), ua.len, 0, 0, md, b->mctx);
    if (rc >= 0)
        return true;
    if (rc != PCRE2_ERROR_NOMATCH)
        pt_log_ratelimited(PT_LOG_WARN, 1, "bot-detection: a pattern failed on a User-Agent (%d)",
                           rc);
    return false;
}

static bool any(const struct bot_detection *b, const struct regex_list *l, struct pt_str ua,
                pcre2_match_data *md)
{
    for (size_t i = 0; i < l->n; i++)
        if (matches(b, l->re[i], ua, md))
            return true;
    return false;
}

static int on_request(void *state, struct pt_exchange *ex)
{
    const struct bot_detection *b = state;
    const struct pt_h1_header *h =
        pt_h1_find_header(ex->req.headers, ex->req.nheaders, PT_STR_LIT("User-Agent"));
    if (h == NULL)
        return PT_PLUGIN_CONTINUE;
    pcre2_match_data *md = match_data();
    if (md == NULL) {
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return PT_PLUGIN_RESPONDED;
    }
    if (any(b, &b->allow, h->value, md))
        return PT_PLUGIN_CONTINUE;
    if (!any(b, &b->deny, h->value, md) &&
        (b->builtin == NULL || !matches(b, b->builtin, h->value, md)))
        return PT_PLUGIN_CONTINUE;
    pt_proxy_respond_problem(ex, 403, "forbidden", "this User-Agent is not allowed", NULL, 0);
    return PT_PLUGIN_RESPONDED;
}

const struct pt_plugin_ops pt_plugin_bot_detection = {
    .name = "bot-detection",
    .order = PT_ORDER_BOT_DETECTION,
    .configure = configure,
    .destroy = destroy,
    .on_request = on_request,
};
