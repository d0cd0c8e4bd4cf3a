/* prctl(PR_SET_KEEPCAPS, 1), as named does at start, then ordinary file reads. The flag
 * changes no credential now (it only matters at a later setuid, itself a call flexsc
 * isolates), so the reads could still be delegated. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) { perror("prctl"); return 1; }
    int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    char buf[4096];
    for (int i = 0; i < n; i++) {
        if (pread(fd, buf, sizeof buf, 0) <= 0) { perror("pread"); return 1; }
    }
    printf("%d preads after PR_SET_KEEPCAPS\n", n);
    return 0;
}
