#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "test.h"

static int deferred[4];
static int order;

static void mark(void *arg)
{
    deferred[(intptr_t)arg] = ++order;
}

int main(void)
{
    struct pt_arena a;
    pt_arena_init(&a);

    char *p = pt_arena_alloc(&a, 10);
    ok(p != NULL, "small allocation");
    ok(((uintptr_t)p & 15) == 0, "16-byte aligned");
    memset(p, 'x', 10);
    char *q = pt_arena_alloc(&a, 3000);
    ok(q != NULL && q != p, "second allocation");
    memset(q, 'y', 3000);
    char *big = pt_arena_alloc(&a, 100000);
    ok(big != NULL, "large allocation gets its own block");
    memset(big, 'z', 100000);
    ok(p[0] == 'x' && p[9] == 'x', "earlier allocation untouched");

    char *s = pt_arena_strndup(&a, "hello world", 5);
    is_str(s, "hello", "strndup copies and terminates");
    char *f = pt_arena_printf(&a, "%d-%s", 42, "x");
    is_str(f, "42-x", "printf");
    struct pt_str v = pt_arena_strdup_str(&a, PT_STR_LIT("view"));
    ok(v.len == 4 && memcmp(v.ptr, "view", 4) == 0 && v.ptr[4] == '\0', "strdup_str");

    int *z = pt_arena_calloc(&a, 64 * sizeof(int));
    int allzero = 1;
    for (int i = 0; i < 64; i++)
        allzero &= z[i] == 0;
    ok(allzero, "calloc zeroes");

    ok(pt_arena_defer(&a, mark, (void *)(intptr_t)0) == 0, "defer 0");
    ok(pt_arena_defer(&a, mark, (void *)(intptr_t)1) == 0, "defer 1");
    pt_arena_reset(&a);
    ok(deferred[1] == 1 && deferred[0] == 2, "deferred callbacks run in reverse order on reset");

    /* the arena is usable after reset, many times over */
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 50; i++) {
            char *r = pt_arena_alloc(&a, (size_t)(i * 37 % 900) + 1);
            if (r == NULL)
                break;
            r[0] = 1;
        }
        pt_arena_reset(&a);
    }
    ok(1, "1000 reset cycles");

    pt_arena_defer(&a, mark, (void *)(intptr_t)2);
    pt_arena_destroy(&a);
    ok(deferred[2] == 3, "destroy runs deferred callbacks");
    ok(pt_arena_alloc(&a, 1) != NULL, "destroyed arena is empty and reusable");
    pt_arena_destroy(&a);
    pt_arena_thread_cleanup();
    return done_testing();
}
