/*  reg_page: lookup of the status page's compiled-in files (see reg_page.h). */
#include "reg_page.h"
#include <assert.h>
#include <string.h>

bool
reg_page_is (const char *path)
{
    return path && strncmp (path, "/admin", 6) == 0 && (path [6] == 0 || path [6] == '/');
}

const reg_page_file_t *
reg_page_find (const char *path)
{
    if (!reg_page_is (path))
        return NULL;
    const char *name = path [6] ? path + 7 : "";
    if (!*name)
        name = "index.html";
    for (const reg_page_file_t *file = reg_page_files; file->name; file++)
        if (strcmp (file->name, name) == 0)
            return file;
    return NULL;
}

void
reg_page_test (bool verbose)
{
    const reg_page_file_t *index = reg_page_find ("/admin/");
    assert (index && strcmp (index->name, "index.html") == 0 && strstr (index->type, "text/html"));
    assert (reg_page_find ("/admin") == index && reg_page_find ("/admin/index.html") == index);
    assert (index->size == strlen ((const char *) index->data));
    assert (strstr ((const char *) index->data, "/admin/app.js"));
    //  No inline script: the policy would block it (script-src 'self')
    assert (!strstr ((const char *) index->data, "<script>") && !strstr ((const char *) index->data, "onclick"));
    const reg_page_file_t *js = reg_page_find ("/admin/app.js");
    assert (js && strstr (js->type, "javascript"));
    assert (reg_page_find ("/admin/style.css"));
    assert (reg_page_find ("/admin/nothing.js") == NULL && reg_page_find ("/admin/../etc/passwd") == NULL);
    assert (reg_page_find ("/administrator") == NULL && reg_page_find ("/") == NULL);
    assert (reg_page_is ("/admin/x") && !reg_page_is ("/adminx") && !reg_page_is (NULL));
}
