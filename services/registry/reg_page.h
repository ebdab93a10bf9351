/*  reg_page: the registry's status page (services/registry/page/, docs/registry-api.md,
    "Status page"): its files are compiled in (gen_page.sh) and served at
    /admin/ by reg_http with a strict Content-Security-Policy. The files hold
    no secret: the page asks for the admin token and sends it only in
    Authorization headers; the data routes are what refuse without it. */
#ifndef REG_PAGE_H_INCLUDED
#define REG_PAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;           //  "index.html", "app.js", ...
    const char *type;           //  Content-Type
    const unsigned char *data;  //  size bytes (and a NUL after them)
    size_t size;
} reg_page_file_t;

//  The generated table (reg_page_data.c), ended by a NULL name.
extern const reg_page_file_t reg_page_files [];

//  The policy every page response carries: scripts, styles and connections
//  from the registry itself only, no inline script or style, no framing.
#define REG_PAGE_CSP "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " \
                     "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//  True when path is the page's (/admin, /admin/...).
bool reg_page_is (const char *path);
//  The file served at path ("/admin" and "/admin/" are index.html), or NULL.
const reg_page_file_t *reg_page_find (const char *path);

void reg_page_test (bool verbose);
#endif
