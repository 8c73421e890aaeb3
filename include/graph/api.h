/*
 * api.h — which names the shared libraries export.
 *
 * libloopgrad (and libloopgrad_mpi, libloopgrad_viz, libloopgrad_plot) are
 * built with -fvisibility=hidden: a function is exported only when it is
 * declared between LG_API_BEGIN and LG_API_END, which every public header
 * puts around its declarations, inside its extern "C" block:
 *
 *     #include "api.h"
 *     ...
 *     #ifdef __cplusplus
 *     extern "C" {
 *     #endif
 *     LG_API_BEGIN
 *
 *     lg_status lg_thing_do(lg_thing *t);
 *
 *     LG_API_END
 *     #ifdef __cplusplus
 *     }
 *     #endif
 *
 * So a declaration added to a public header is exported without a macro of
 * its own, and nothing declared only under src/ (the op tables, the
 * kernels, lg_cpu_*) is. A new public header wraps its declarations the
 * same way, after its #includes. The suite `exports` (tests/exports.py)
 * checks both ways: every name a library exports is declared in its
 * headers, and every function its headers declare is exported.
 *
 * A test or tool that calls functions of src/ (its internal headers) links
 * the static library, libloopgrad.a, not the shared one.
 */
#ifndef LG_API_H
#define LG_API_H

#if defined(__GNUC__) || defined(__clang__)
#define LG_API_BEGIN _Pragma("GCC visibility push(default)")
#define LG_API_END _Pragma("GCC visibility pop")
#else
#define LG_API_BEGIN
#define LG_API_END
#endif

#endif
