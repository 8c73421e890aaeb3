/*
 * fuzz_safetensors.c — a libFuzzer target for the safetensors reader
 * (checkpoint.h): any bytes go to lg_safetensors_parse, which must either
 * fail with a message and no handle, or give a file whose every tensor
 * reads back with the header's name, dtype and shape. A broken promise
 * traps, so the fuzzer reports it as a crash; memory errors are the
 * sanitizers'.
 *
 * fuzz/run builds it with clang -fsanitize=fuzzer,address,undefined and
 * fuzzes; fuzz/replay.c runs it over fuzz/corpus/ in the test suite.
 */
#define _GNU_SOURCE /* memfd_create, in fuzz.h */
#include "fuzz.h"
#include "graph/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_fuzz_one(data, size);
    return 0;
}

lg_status lg_fuzz_one(const uint8_t *data, size_t size)
{
    lg_safetensors *f = NULL;
    lg_status s = lg_safetensors_parse(data, size, &f);
    if (s != LG_OK) {
        REQUIRE(f == NULL && lg_last_error()[0] != '\0');
        return s;
    }
    size_t total = 0;
    for (int i = 0; i < lg_safetensors_count(f); i++) {
        const char *name = lg_safetensors_name(f, i);
        REQUIRE(name != NULL && lg_safetensors_find(f, name) == i);
        lg_tensor *t = NULL;
        REQUIRE(lg_safetensors_get(f, name, &t) == LG_OK);
        REQUIRE(lg_tensor_dtype(t) == lg_safetensors_dtype(f, i));
        REQUIRE(lg_shape_equal(lg_tensor_shape(t), lg_safetensors_shape(f, i)));
        REQUIRE(lg_safetensors_read(f, name, t) == LG_OK);
        total += lg_tensor_bytes(t);
        lg_tensor_free(t);
    }
    REQUIRE(total + 8 <= size); /* the tensors' bytes all come from the input */
    (void)lg_safetensors_metadata(f, "format");
    lg_safetensors_free(f);
    return LG_OK;
}
