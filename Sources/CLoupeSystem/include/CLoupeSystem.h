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

/// accept4(2) (a GNU extension in glibc's headers).
int cloupe_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
