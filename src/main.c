/*
 * Command line (SPEC §1):
 *
 *   portico run   [-c FILE] [--workers N]   start in the foreground
 *   portico check [-c FILE]                 validate; FILE:LINE:COL: message per error
 *   portico proxy --listen ADDR --to URL [--workers N]   zero-config: every path to URL
 *   portico version
 *
 * -c may be omitted when PORTICO_CONFIG is set.  Exit codes: 0 ok, 1 bad
 * configuration, 2 runtime failure.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/opensslv.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/log.h"
#include "admin/admin.h"
#include "config/config.h"
#include "net/tls.h"
#include "net/tls_sessions.h"
#include "proxy/server.h"

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_RUNTIME = 2 };

/* The admin API lives on the main thread's loop, above the server (SPEC §6). */
static const struct pt_server_hooks server_hooks = {
    .started = pt_admin_start,
    .config_changed = pt_admin_config_changed,
    .stopping = pt_admin_stop,
};

static void usage(FILE *out)
{
    fprintf(out, "usage: portico run   [-c FILE] [--workers N]\n"
                 "       portico check [-c FILE]\n"
                 "       portico proxy --listen ADDR --to URL [--workers N]\n"
                 "       portico version\n"
                 "\n"
                 "  -c, --config FILE   configuration file (default: $PORTICO_CONFIG)\n"
                 "  -w, --workers N     override server.workers\n"
                 "  -l, --listen ADDR   proxy: address to listen on (e.g. 0.0.0.0:8080)\n"
                 "  -t, --to URL        proxy: where to send every request\n");
}

static int cmd_version(void)
{
    printf("portico %s (%s)\n", PT_VERSION, PT_GIT_REV);
    printf("built with: %s, libyaml %s, jansson %s, PCRE2 %d.%d\n", OPENSSL_VERSION_TEXT,
           yaml_get_version_string(), JANSSON_VERSION, PCRE2_MAJOR, PCRE2_MINOR);
    printf("features: HTTP/1.1=yes TLS=yes (OpenSSL %s) HTTP/2=no Redis=no etcd=no\n",
           pt_tls_library_version());
    return EXIT_OK;
}

struct options {
    const char *config;
    const char *listen;
    const char *to;
    unsigned workers;
};

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"workers", required_argument, NULL, 'w'},
        {"listen", required_argument, NULL, 'l'}, {"to", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 2; /* skip the program and the command */
    while ((ch = getopt_long(argc, argv, "c:w:l:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > 256) {
                fprintf(stderr, "portico: --workers must be 1..256\n");
                return -1;
            }
            o->workers = (unsigned)v;
            break;
        }
        case 'l':
            o->listen = optarg;
            break;
        case 't':
            o->to = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(EXIT_OK);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "portico: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->config == NULL)
        o->config = getenv("PORTICO_CONFIG");
    return 0;
}

static struct pt_snapshot *load(const char *path, unsigned workers, bool print_warnings)
{
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_config_options opts = {.workers_override = workers};
    struct pt_snapshot *s = pt_config_load_file_opts(path, &opts, &d);
    if (s == NULL || print_warnings)
        pt_diag_print(&d, stderr);
    pt_diag_free(&d);
    return s;
}

static int run_snapshot(struct pt_snapshot *snap, const char *path)
{
    pt_log_level = snap->server.log_level;
    int rc = pt_server_run(snap, path, &server_hooks); /* takes the snapshot over */
    pt_tls_sessions_clear();
    return rc;
}

static int cmd_run(const struct options *o)
{
    if (o->config == NULL) {
        fprintf(stderr, "portico: no configuration: use -c FILE or set PORTICO_CONFIG\n");
        return EXIT_CONFIG;
    }
    struct pt_snapshot *snap = load(o->config, o->workers, true);
    if (snap == NULL)
        return EXIT_CONFIG;
    return run_snapshot(snap, o->config);
}

static int cmd_check(const struct options *o)
{
    if (o->config == NULL) {
        fprintf(stderr, "portico: no configuration: use -c FILE or set PORTICO_CONFIG\n");
        return EXIT_CONFIG;
    }
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_snapshot *s = pt_config_load_file(o->config, &d);
    pt_diag_print(&d, stderr);
    size_t nerr = d.nerrors;
    pt_diag_free(&d);
    if (s == NULL) {
        fprintf(stderr, "%s: %zu error%s\n", o->config, nerr, nerr == 1 ? "" : "s");
        return EXIT_CONFIG;
    }
    printf("%s: ok (%zu route%s, %zu service%s)\n", o->config, s->nroutes,
           s->nroutes == 1 ? "" : "s", s->nservices, s->nservices == 1 ? "" : "s");
    pt_snapshot_unref(s);
    return EXIT_OK;
}

/* A YAML string is written with JSON escaping (JSON is YAML). */
static char *quoted(const char *s)
{
    json_t *j = json_string(s);
    char *out = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return out;
}

static int cmd_proxy(const struct options *o)
{
    if (o->listen == NULL || o->to == NULL) {
        fprintf(stderr, "portico: proxy needs --listen ADDR and --to URL\n");
        return EXIT_CONFIG;
    }
    char *l = quoted(o->listen), *t = quoted(o->to);
    if (l == NULL || t == NULL) {
        fprintf(stderr, "portico: invalid --listen or --to\n");
        free(l);
        free(t);
        return EXIT_CONFIG;
    }
    char *yaml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);
    if (f == NULL)
        return EXIT_RUNTIME;
    fprintf(f,
            "server: {listen: [%s]}\n"
            "services: {upstream: {targets: [%s]}}\n"
            "routes: [{name: all, match: {paths: [\"/*\", \"/\"]}, service: upstream}]\n",
            l, t);
    fclose(f);
    free(l);
    free(t);
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_config_options opts = {.workers_override = o->workers};
    struct pt_snapshot *snap = pt_config_load_buffer_opts("(proxy)", ".", yaml, len, &opts, &d);
    if (snap == NULL)
        pt_diag_print(&d, stderr);
    pt_diag_free(&d);
    free(yaml);
    if (snap == NULL)
        return EXIT_CONFIG;
    return run_snapshot(snap, NULL);
}

int main(int argc, char **argv)
{
    pt_alloc_init();
    if (argc < 2) {
        usage(stderr);
        return EXIT_CONFIG;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version();
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    struct options o = {0};
    if (parse_options(argc, argv, &o) != 0)
        return EXIT_CONFIG;
    if (strcmp(cmd, "run") == 0)
        return cmd_run(&o);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(&o);
    if (strcmp(cmd, "proxy") == 0)
        return cmd_proxy(&o);
    fprintf(stderr, "portico: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_CONFIG;
}
