#include <string.h>

#include "core/buf.h"
#include "core/compiler.h"
#include "test.h"

int main(void)
{
    struct pt_buf b;
    pt_buf_init(&b);
    ok(b.data == NULL && pt_buf_len(&b) == 0, "empty buffer holds no memory");

    char *w = pt_buf_reserve(&b, 100, 1 << 20);
    ok(w != NULL && pt_buf_room(&b) >= 100, "reserve");
    memcpy(w, "hello", 5);
    pt_buf_commit(&b, 5);
    is_int(pt_buf_len(&b), 5, "commit");
    pt_buf_consume(&b, 2);
    ok(memcmp(pt_buf_head(&b), "llo", 3) == 0, "consume from the front");
    pt_buf_consume(&b, 3);
    is_int(b.start, 0, "an emptied buffer rewinds");
    pt_buf_release_if_empty(&b);
    ok(b.data == NULL, "release when empty");

    /* compaction keeps content */
    pt_buf_append(&b, "abcdef", 6, 1 << 20);
    pt_buf_consume(&b, 3);
    size_t room = PT_BUF_SIZE - 3 + 3;
    w = pt_buf_reserve(&b, room - 3, 1 << 20);
    ok(w != NULL && b.start == 0 && memcmp(pt_buf_head(&b), "def", 3) == 0,
       "reserve compacts before growing");

    /* growth */
    char big[40000];
    memset(big, 'q', sizeof(big));
    ok(pt_buf_append(&b, big, sizeof(big), 1 << 20) == 0, "append grows the buffer");
    is_int(pt_buf_len(&b), 3 + sizeof(big), "content length after growth");
    ok(memcmp(pt_buf_head(&b), "def", 3) == 0 && pt_buf_head(&b)[3 + 39999] == 'q',
       "content intact after growth");

    /* the cap */
    ok(pt_buf_reserve(&b, 1 << 21, 1 << 20) == NULL, "reserve beyond the cap fails");
    ok(pt_buf_append(&b, big, sizeof(big), 50000) != 0, "append beyond the cap fails");
    pt_buf_free(&b);
    ok(b.data == NULL && pt_buf_len(&b) == 0, "free");

    /* pooled blocks are recycled */
    pt_buf_reserve(&b, 10, PT_BUF_SIZE);
    char *first = b.data;
    pt_buf_free(&b);
    pt_buf_reserve(&b, 10, PT_BUF_SIZE);
#ifdef PT_ARENA_PASSTHROUGH
    ok(b.data != NULL, "block allocated (no pooling under sanitizers)");
#else
    ok(b.data == first, "freed block is reused");
#endif
    (void)first;
    pt_buf_free(&b);
    pt_buf_thread_cleanup();
    return done_testing();
}
