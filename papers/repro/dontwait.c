/* send/recv with MSG_DONTWAIT on a socket that has room and data: neither call can
 * wait, so a service thread can finish both inline. Prints ns per send+recv pair. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    int sv[2];
    char buf[64] = {0};
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) { perror("socketpair"); return 1; }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        if (send(sv[0], buf, sizeof buf, MSG_DONTWAIT) != (ssize_t)sizeof buf) { perror("send"); return 1; }
        if (recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) != (ssize_t)sizeof buf) { perror("recv"); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%d send+recv pairs with MSG_DONTWAIT: %.0f ns per pair\n", n, ns / n);
    return 0;
}
