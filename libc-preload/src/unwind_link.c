/*
 * The unwinder the preload's Rust code calls (panics, and the personality routine of its
 * frames when a C++ exception or glibc's forced unwinding passes through them): the
 * program's own libgcc_s, reached through these forwarders instead of a DT_NEEDED entry.
 *
 * Why: a library in DT_NEEDED is loaded, and its constructor run, in every process
 * `flexsc run` starts; libgcc_s's constructor (__cpu_indicator_init) runs a dozen
 * `cpuid`s, each a VM exit of ~4 us on a KVM guest (~90 us per process measured).
 * Most programs never unwind; those that do (C++, and glibc itself for pthread_exit and
 * pthread_cancel) load libgcc_s anyway.
 *
 * Why forwarders and not a second unwinder linked in (libgcc_eh): a foreign unwind that
 * passes through a Rust frame calls its personality routine with the *program's*
 * unwinder's context, and the personality's _Unwind_SetGR must be that unwinder's (a
 * second copy aborts: its register table was never set up).
 *
 * Loading: `flexsc_unwind_link_load` (the preload calls it before glibc's pthread_exit
 * and pthread_cancel, so a cancellation's unwind, inside a signal handler, finds the table
 * filled), or the first forwarder called. Built with hidden visibility, and the cdylib's
 * version script keeps every symbol here local: nothing else in the process sees them.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct _Unwind_Context;
struct _Unwind_Exception;
typedef int _Unwind_Reason_Code;
typedef _Unwind_Reason_Code (*_Unwind_Trace_Fn)(struct _Unwind_Context *, void *);

/* The functions std's unwinding and backtraces call: those that return a value ... */
#define UNWIND_FUNCTIONS(X)                                                                   \
    X(RaiseException, _Unwind_Reason_Code, (struct _Unwind_Exception * e), (e))               \
    X(Backtrace, _Unwind_Reason_Code, (_Unwind_Trace_Fn trace, void *arg), (trace, arg))      \
    X(GetIP, uintptr_t, (struct _Unwind_Context * c), (c))                                    \
    X(GetIPInfo, uintptr_t, (struct _Unwind_Context * c, int *before), (c, before))           \
    X(GetLanguageSpecificData, void *, (struct _Unwind_Context * c), (c))                     \
    X(GetRegionStart, uintptr_t, (struct _Unwind_Context * c), (c))                           \
    X(GetTextRelBase, uintptr_t, (struct _Unwind_Context * c), (c))                           \
    X(GetDataRelBase, uintptr_t, (struct _Unwind_Context * c), (c))
/* ... and those that do not. */
#define UNWIND_PROCEDURES(X)                                                                  \
    X(Resume, void, (struct _Unwind_Exception * e), (e))                                      \
    X(DeleteException, void, (struct _Unwind_Exception * e), (e))                             \
    X(SetIP, void, (struct _Unwind_Context * c, uintptr_t ip), (c, ip))                       \
    X(SetGR, void, (struct _Unwind_Context * c, int reg, uintptr_t v), (c, reg, v))

/* One pointer per function, null until loaded: each written once (release), read
 * (acquire); `loaded` is set after all of them. */
#define SLOT(name, ret, params, args) static ret(*real_##name) params;
UNWIND_FUNCTIONS(SLOT)
UNWIND_PROCEDURES(SLOT)
static int loaded;

static void die(const char *what) {
    static const char head[] = "flexsc: cannot load libgcc_s.so.1 to unwind (";
    if (write(2, head, sizeof head - 1) < 0 || write(2, what, __builtin_strlen(what)) < 0 ||
        write(2, ")\n", 2) < 0) {
        /* Nothing more to say it with. */
    }
    abort();
}

/* Fills every slot (idempotent; threads racing here store the same values). */
__attribute__((visibility("hidden"))) void flexsc_unwind_link_load(void) {
    if (__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) return;
    void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL) lib = dlopen("libgcc_s.so.1", RTLD_NOW);
    if (lib == NULL) die(dlerror());
#define LOAD(name, ret, params, args)                                           \
    {                                                                           \
        void *p = dlsym(lib, "_Unwind_" #name);                                 \
        if (p == NULL) die("_Unwind_" #name " missing");                        \
        __atomic_store_n((void **)&real_##name, p, __ATOMIC_RELEASE);           \
    }
    UNWIND_FUNCTIONS(LOAD)
    UNWIND_PROCEDURES(LOAD)
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

/* Each forwarder: the slot, loaded first if empty, then a call the compiler makes a
 * jump (the unwinder then starts from the caller's frame, as if called directly; where
 * it is a call, this frame has unwind tables and no personality, and is passed over). */
#define FORWARD(name, ret, params, args, RETURN)                                \
    __attribute__((visibility("hidden"))) ret _Unwind_##name params {           \
        ret(*real) params = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);    \
        if (real == NULL) {                                                     \
            flexsc_unwind_link_load();                                          \
            real = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);             \
        }                                                                       \
        RETURN real args;                                                       \
    }
#define FORWARD_VALUE(name, ret, params, args) FORWARD(name, ret, params, args, return)
#define FORWARD_VOID(name, ret, params, args) FORWARD(name, ret, params, args, )
UNWIND_FUNCTIONS(FORWARD_VALUE)
UNWIND_PROCEDURES(FORWARD_VOID)
