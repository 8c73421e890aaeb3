/* dot_util.c — what the DOT writers share (dot_util.h). */
#include <stdint.h>
#include <string.h>

#include "dot_util.h"

/* The length of the UTF-8 sequence at s if it is valid and encodes a code
 * point XML accepts, else 0. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0], n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    for (unsigned i = 1; i < n; i++) { /* stops at a NUL: it is no continuation byte */
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0; /* overlong, too big */
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff) return 0;      /* surrogates, non-XML */
    return (int)n;
}

void viz_put_text(FILE *f, const char *s, viz_text_mode mode)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = utf8_len(p);
        if (c == '\n') fputs(mode == VIZ_HTML ? "<BR/>" : "\\n", f);
        else if (n == 0 || c < 0x20 || c == 0x7f) fprintf(f, mode == VIZ_HTML ? "\\x%02x" : "\\\\x%02x", c);
        else if (mode == VIZ_HTML && c == '&') fputs("&amp;", f);
        else if (mode == VIZ_HTML && c == '<') fputs("&lt;", f);
        else if (mode == VIZ_HTML && c == '>') fputs("&gt;", f);
        else if (mode == VIZ_HTML && c == '"') fputs("&quot;", f);
        else if (mode == VIZ_QUOTED && c == '"') fputs("\\\"", f);
        else if (mode == VIZ_QUOTED && c == '\\') fputs("\\\\", f);
        else fwrite(p, 1, (size_t)n, f);
        p += n ? n : 1;
    }
}

bool viz_in_scope(const char *name, const char *scope)
{
    if (!scope || !scope[0]) return true;
    size_t n = strlen(scope);
    while (n > 0 && scope[n - 1] == '/') n--;
    return strncmp(name, scope, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

bool viz_put_fusion(FILE *f, const lg_graph *g, int32_t i)
{
    enum { BRIEF = 60 }; /* a reason past this is cut: lg_program_report has it whole */
    char what[256];
    bool fused = lg_loop_fused(g, i, what, sizeof what);
    if (!fused && strlen(what) > BRIEF) strcpy(what + BRIEF - 3, "...");
    fputs(fused ? "fused: " : "not fused: ", f);
    viz_put_text(f, what, VIZ_HTML);
    if (fused) fputs(", CPU kernel", f);
    return fused;
}
