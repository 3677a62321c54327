#define _GNU_SOURCE
#include <pthread.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "CLoupeSystem.h"
#ifdef __linux__
#include <linux/filter.h>
#endif

int cloupe_set_thread_name(const char *name) {
#ifdef __linux__
    return pthread_setname_np(pthread_self(), name);
#else
    return pthread_setname_np(name);
#endif
}

int cloupe_lower_thread_priority(void) {
#ifdef __linux__
    struct sched_param parameters = { .sched_priority = 0 };
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &parameters) == 0) return 2;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) == 0) return 1;
#endif
    return 0;
}

int cloupe_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

int cloupe_drop_new_connections(int fd) {
#ifdef __linux__
    // Classic BPF over the TCP header (a TCP socket's filter sees the packet from its TCP
    // header): drop a SYN without ACK (a new connection attempt), keep everything else, so
    // handshakes already under way still complete into the accept queue.
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),             // the flags byte
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),          // SYN | ACK
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),    // SYN alone?
        BPF_STMT(BPF_RET | BPF_K, 0),                       // drop
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),              // keep
    };
    struct sock_fprog program = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program));
#else
    (void)fd;
    return -1;
#endif
}

int cloupe_affinity_cpu_count(void) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
#else
    return -1;
#endif
}

int cloupe_detach_filter(int fd) {
#ifdef __linux__
    int unused = 0;
    return setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused));
#else
    (void)fd;
    return -1;
#endif
}

static unsigned cloupe_next_thread_index;
// initial-exec: a plain %fs-relative access (the library is linked into the executable), not a
// __tls_get_addr call per use.
static _Thread_local unsigned cloupe_thread_index_plus_one __attribute__((tls_model("initial-exec")));
static _Thread_local unsigned long long cloupe_words[64] __attribute__((tls_model("initial-exec")));

unsigned long long *cloupe_thread_words(void) { return cloupe_words; }

unsigned cloupe_thread_index(void) {
    unsigned v = cloupe_thread_index_plus_one;
    if (__builtin_expect(v == 0, 0)) {
        v = __atomic_add_fetch(&cloupe_next_thread_index, 1, __ATOMIC_RELAXED);
        cloupe_thread_index_plus_one = v;
    }
    return v - 1;
}
