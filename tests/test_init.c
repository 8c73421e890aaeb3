/*
 * test_init.c — the Philox-4x32-10 generator against Random123's published
 * known-answer vectors (kat_vectors, "philox4x32 10"), and the streams built
 * on it, so any other implementation (a GPU one) can be checked against the
 * same numbers.
 */
#include <check.h>
#include <stdint.h>

#include "test_util.h"
#include "graph/loopgrad.h"

/* counter[4], key[2] -> block[4], as Random123's kat_vectors lists them. */
static const uint32_t KAT[][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
     0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
};

START_TEST(philox_known_answers)
{
    const uint32_t *v = KAT[_i];
    uint32_t out[4];
    lg_philox4x32_10(v, v + 4, out);
    for (int j = 0; j < 4; j++) ck_assert_msg(out[j] == v[6 + j], "vector %d word %d: %08x, want %08x", _i, j, out[j], v[6 + j]);
}
END_TEST

/* Position i of stream (seed, key) is word 0 of the block at counter
 * {i lo, i hi, key lo, key hi} under {seed lo, seed hi}: the third vector
 * read as a stream position. */
START_TEST(philox_stream_is_the_block)
{
    const uint32_t *v = KAT[2];
    uint64_t i = (uint64_t)v[1] << 32 | v[0], key = (uint64_t)v[3] << 32 | v[2], seed = (uint64_t)v[5] << 32 | v[4];
    ck_assert_uint_eq(lg_philox_u32(seed, key, i), v[6]);
    ck_assert_uint_eq(lg_philox_u32(0, 0, 0), KAT[0][6]);
    ck_assert_uint_eq(lg_philox_u32(UINT64_MAX, UINT64_MAX, UINT64_MAX), KAT[1][6]);
    /* uniform: words 0 and 1 as 53 bits over 2^53 */
    double u = lg_philox_uniform(0, 0, 0);
    uint64_t bits = ((uint64_t)KAT[0][6] << 21 ^ KAT[0][7] >> 11) & ((1ull << 53) - 1);
    ck_assert(u == (double)bits * 0x1.0p-53);
    ck_assert(u >= 0 && u < 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("init");
    TCase *tc = tcase_create("philox");
    tcase_add_loop_test(tc, philox_known_answers, 0, (int)(sizeof KAT / sizeof KAT[0]));
    tcase_add_test(tc, philox_stream_is_the_block);
    suite_add_tcase(s, tc);
    return lg_check_run(s);
}
