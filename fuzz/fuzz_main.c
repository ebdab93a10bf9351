/*  fuzz_main: replays files through a fuzz target without libFuzzer, so the
    stored corpus runs as a regression test under any compiler (and under ASan and
    valgrind). Usage: fuzz_x FILE|DIR... */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_run_file (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "fuzz_main: cannot open %s\n", path);
        return -1;
    }
    uint8_t *buf = malloc (1 << 20);
    if (!buf) {
        fclose (f);
        return -1;
    }
    size_t n = fread (buf, 1, 1 << 20, f);
    fclose (f);
    //  An exact-size copy so ASan sees reads past the end of the input
    uint8_t *exact = malloc (n ? n : 1);
    if (exact) {
        memcpy (exact, buf, n);
        LLVMFuzzerTestOneInput (exact, n);
        free (exact);
    }
    free (buf);
    return 0;
}

int
main (int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat (argv [i], &st))
            continue;
        if (S_ISDIR (st.st_mode)) {
            DIR *dir = opendir (argv [i]);
            struct dirent *e;
            while (dir && (e = readdir (dir))) {
                if (e->d_name [0] == '.')
                    continue;
                char path [4096];
                snprintf (path, sizeof path, "%s/%s", argv [i], e->d_name);
                if (s_run_file (path) == 0)
                    files++;
            }
            if (dir)
                closedir (dir);
        }
        else
        if (s_run_file (argv [i]) == 0)
            files++;
    }
    printf ("%d inputs replayed\n", files);
    return 0;
}
