/*
 * libFuzzer target: a configuration from bytes, the whole way to a
 * snapshot (YAML, ${ENV}, schema, router, balancers), then back to JSON.
 *
 * Checks beyond "no crash, no leak": every diagnostic has a position (an
 * error the user cannot locate is a bug), and a successful load reports no
 * error.  Built with -DPT_FUZZING, so host names other than localhost are
 * never resolved (no DNS traffic from the fuzzer).  The environment is a
 * fixed table, so results do not depend on the machine.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/config.h"
#include "config/node.h"

static const char *fuzz_env(void *ctx, const char *name)
{
    (void)ctx;
    static const char *const vars[][2] = {
        {"HOST", "127.0.0.1"}, {"PORT", "9001"},  {"EMPTY", ""},
        {"TOKEN", "s3cret"},   {"PATH_", "/api"}, {"LIST", "[1, 2]"},
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (strcmp(name, vars[i][0]) == 0)
            return vars[i][1];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct pt_config_options opts = {.workers_override = 2, .env = {fuzz_env, NULL}};
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_snapshot *s =
        pt_config_load_buffer_opts("fuzz.yaml", "/fuzz", (const char *)data, size, &opts, &d);
    for (size_t i = 0; i < d.n; i++)
        if (d.entries[i].line <= 0 || d.entries[i].col <= 0)
            abort(); /* a diagnostic without a position */
    if (s != NULL) {
        if (d.nerrors != 0)
            abort(); /* errors reported, yet a snapshot */
        json_t *raw = pt_conf_node_to_json(s->tree, true);
        json_t *exp = pt_conf_node_to_json(s->tree, false);
        if (raw == NULL || exp == NULL)
            abort();
        char *text = json_dumps(raw, JSON_COMPACT);
        free(text);
        json_decref(raw);
        json_decref(exp);
        pt_snapshot_unref(s);
    } else if (d.nerrors == 0) {
        abort(); /* no snapshot, no reason */
    }
    pt_diag_free(&d);
    return 0;
}
