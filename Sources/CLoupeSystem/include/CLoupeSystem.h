// Linux system headers that Swift's Glibc module does not export (epoll, eventfd, thread
// names), for LoupeHTTP's syscall funnel.
#pragma once
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
#include <pthread.h>
#include <sys/socket.h>

/// pthread_setname_np needs _GNU_SOURCE; wrapped so Swift can call it. Returns 0 or an errno.
int cloupe_set_thread_name(const char *name);

/// Moves the calling thread to the idle scheduling class (SCHED_IDLE, Linux), else to nice 19.
/// Returns 2 for SCHED_IDLE, 1 for nice 19, 0 when neither took effect.
int cloupe_lower_thread_priority(void);

/// CPUs in the calling thread's scheduler affinity mask (sched_getaffinity, CPU_COUNT), or -1.
int cloupe_affinity_cpu_count(void);

/// accept4(2) (a GNU extension in glibc's headers).
int cloupe_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// Attaches a socket filter to a listening TCP socket that drops new connection attempts (a SYN
/// without ACK): their clients retry the SYN later and meet a closed port, instead of completing
/// into an accept queue about to be closed. Handshakes under way still complete. 0 or -1 + errno.
int cloupe_drop_new_connections(int fd);

/// Removes a socket filter (an accepted socket inherits its listener's). Returns 0 or -1 with errno.
int cloupe_detach_filter(int fd);

/// A small number for the calling thread, 0, 1, 2, … in the order threads first ask (never reused),
/// so striped counters can give each thread its own cache line. A thread-local read after the first call.
unsigned cloupe_thread_index(void);

/// The calling thread's own 64 words (zero at first), for LoupeSystem's per-thread counters
/// (`BlockCounter` claims two each). Touched only by the thread.
unsigned long long *cloupe_thread_words(void);
