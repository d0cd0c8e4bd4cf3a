/* An experiment, not a fix: preloaded after libflexsc_preload.so, it makes
 * prctl(PR_SET_KEEPCAPS) fail with EINVAL (which named tolerates), so flexsc does not mark
 * named isolated and one can see what BIND would delegate (papers/flexsc.md, section 5,
 * point 7). It changes the program's behaviour; never use it for the measured rows.
 *   gcc -O2 -shared -fPIC -o nokeepcaps.so nokeepcaps.c -ldl
 *   setpriv --reuid=bind --regid=bind --clear-groups env LD_PRELOAD=$PWD/nokeepcaps.so \
 *       target/release/flexsc run --stats --policy always -- /usr/sbin/named -g -c CONF
 * (LD_PRELOAD goes after setpriv, which itself calls prctl(PR_SET_KEEPCAPS).) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/prctl.h>
int prctl(int option, ...) {
    va_list ap; va_start(ap, option);
    unsigned long a = va_arg(ap, unsigned long), b = va_arg(ap, unsigned long),
                  c = va_arg(ap, unsigned long), d = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_KEEPCAPS) { errno = EINVAL; return -1; }
    int (*real)(int, ...) = (int (*)(int, ...))dlsym(RTLD_NEXT, "prctl");
    return real(option, a, b, c, d);
}
