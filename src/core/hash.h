/*
 * Non-cryptographic hashes for in-process tables and change detection:
 * FNV-1a 64 over bytes, and the murmur3 fmix64 finaliser for when the high
 * bits must be well mixed (FNV alone spreads short keys poorly there).
 * Nothing here is safe against chosen keys; never use it for a table whose
 * keys come from clients.
 */
#ifndef PT_CORE_HASH_H
#define PT_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PT_FNV1A_OFFSET 0xcbf29ce484222325ull
#define PT_FNV1A_PRIME  0x100000001b3ull

/** FNV-1a 64 of p[0..n), continuing from h (PT_FNV1A_OFFSET to start). */
static inline uint64_t pt_fnv1a(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= PT_FNV1A_PRIME;
    }
    return h;
}

/** murmur3's 64-bit finaliser: every input bit affects every output bit. */
static inline uint64_t pt_fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

#endif
