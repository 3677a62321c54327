#define _GNU_SOURCE
#include <pthread.h>
#include <sys/socket.h>
#include "CLoupeSystem.h"

int cloupe_set_thread_name(const char *name) {
#ifdef __linux__
    return pthread_setname_np(pthread_self(), name);
#else
    return pthread_setname_np(name);
#endif
}

int cloupe_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}
