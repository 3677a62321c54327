// The one place LoupeHTTP talks to the kernel. Every call retries EINTR (except close, see
// below), reports EAGAIN/EWOULDBLOCK as a value rather than an error, and throws a typed
// `SyscallError` carrying errno and the call's name. Nothing else in LoupeHTTP calls read,
// write, accept, close or the socket setup calls directly. (TLS is the one exception: OpenSSL's
// socket BIO reads and writes the fd itself; SIGPIPE is ignored process-wide for that reason.)

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLoupeSystem
import LoupeSystem

/// A failed system call: which call, and errno.
public struct SyscallError: Error, Sendable, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Int32
    public init(call: String, errno: Int32) { self.call = call; self.errno = errno }
    public var description: String {
        let text = strerror(errno).map { String(cString: $0) } ?? "unknown error"
        return "\(call) failed: \(text) (errno \(errno))"
    }
    /// The peer went away (reset, broken pipe, timed out at the TCP level).
    var isConnectionLoss: Bool {
        errno == ECONNRESET || errno == EPIPE || errno == ETIMEDOUT || errno == ENOTCONN || errno == EHOSTUNREACH
    }
    /// Out of file descriptors or kernel memory: back off, do not spin.
    var isResourceExhaustion: Bool {
        errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM
    }
}

/// Result of a nonblocking transfer.
enum IOResult: Equatable {
    case processed(Int)   // bytes moved; 0 from read means end of stream
    case wouldBlock
}

enum Syscall {
    @inline(__always)
    private static func retrying<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SyscallError) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = Glibc.errno
            if e == EINTR { continue }
            throw SyscallError(call: call, errno: e)
        }
    }

    @inline(__always)
    private static func retryingIO(_ call: String, _ body: () -> Int) throws(SyscallError) -> IOResult {
        while true {
            let r = body()
            if r >= 0 { return .processed(r) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SyscallError(call: call, errno: e)
        }
    }

    // MARK: data

    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) -> IOResult {
        try retryingIO("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// send(2) with MSG_NOSIGNAL: a vanished peer yields EPIPE, never SIGPIPE.
    static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SyscallError) -> IOResult {
        try retryingIO("send") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Closes a descriptor. On Linux the descriptor is released even when close reports EINTR,
    /// so EINTR is not retried (retrying could close a descriptor another thread just got).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    static func shutdown(_ fd: Int32, _ how: Int32) {
        _ = Glibc.shutdown(fd, how)
    }

    // MARK: sockets

    static func socket(_ domain: Int32, _ type: Int32, _ proto: Int32) throws(SyscallError) -> Int32 {
        try retrying("socket") { Glibc.socket(domain, type, proto) }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, call: String = "setsockopt") throws(SyscallError) {
        var v = value
        _ = try retrying(call) { Glibc.setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// A listening socket stops taking new connection attempts (`cloupe_drop_new_connections`);
    /// best effort.
    static func dropNewConnections(_ fd: Int32) {
        _ = cloupe_drop_new_connections(fd)
    }

    /// Removes a socket filter (`cloupe_detach_filter`); best effort.
    static func detachFilter(_ fd: Int32) {
        _ = cloupe_detach_filter(fd)
    }

    static func setLinger(_ fd: Int32, seconds: Int32) {
        var l = linger(l_onoff: 1, l_linger: seconds)
        _ = Glibc.setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    static func bind(_ fd: Int32, _ address: SocketAddress) throws(SyscallError) {
        _ = try address.withSockAddr { (p, len) throws(SyscallError) -> Int32 in
            try retrying("bind") { Glibc.bind(fd, p, len) }
        }
    }

    static func listen(_ fd: Int32, backlog: Int32) throws(SyscallError) {
        _ = try retrying("listen") { Glibc.listen(fd, backlog) }
    }

    /// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; nil when no connection is waiting.
    /// ECONNABORTED (the peer gave up while queued) is also reported as nil.
    static func accept(_ fd: Int32) throws(SyscallError) -> (fd: Int32, peer: SocketAddress)? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let r = withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                    cloupe_accept4(fd, sp, &len, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
                }
            }
            if r >= 0 { return (r, SocketAddress(storage: storage)) }
            let e = Glibc.errno
            switch e {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK, ECONNABORTED: return nil
            default: throw SyscallError(call: "accept4", errno: e)
            }
        }
    }

    static func localAddress(_ fd: Int32) throws(SyscallError) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try retrying("getsockname") {
            withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.getsockname(fd, $0, &len) }
            }
        }
        return SocketAddress(storage: storage)
    }

    // MARK: epoll / eventfd

    static func epollCreate() throws(SyscallError) -> Int32 {
        try retrying("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
    }

    static func epollControl(_ epfd: Int32, _ op: Int32, _ fd: Int32, events: UInt32) throws(SyscallError) {
        var ev = epoll_event()
        ev.events = events
        ev.data.fd = fd
        _ = try retrying("epoll_ctl") { epoll_ctl(epfd, op, fd, &ev) }
    }

    /// epoll_wait; an interrupted wait returns 0 events rather than retrying with a stale timeout.
    static func epollWait(_ epfd: Int32, _ events: UnsafeMutableBufferPointer<epoll_event>, timeoutMs: Int32) throws(SyscallError) -> Int {
        let r = epoll_wait(epfd, events.baseAddress, Int32(events.count), timeoutMs)
        if r >= 0 { return Int(r) }
        let e = Glibc.errno
        if e == EINTR { return 0 }
        throw SyscallError(call: "epoll_wait", errno: e)
    }

    static func eventFD() throws(SyscallError) -> Int32 {
        try retrying("eventfd") { eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC)) }
    }

    static func eventFDSignal(_ fd: Int32) {
        var one: UInt64 = 1
        _ = try? retryingIO("write") { withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) } }
    }

    static func eventFDDrain(_ fd: Int32) {
        var value: UInt64 = 0
        _ = try? retryingIO("read") { withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) } }
    }

    // MARK: process

    /// Ignore SIGPIPE for the whole process (OpenSSL writes sockets itself without MSG_NOSIGNAL).
    static func ignoreSIGPIPE() {
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// Monotonic clock in nanoseconds (vDSO; no syscall).
    @inline(__always)
    static func monotonicNanoseconds() -> UInt64 { LoupeSystem.monotonicNanoseconds() }

    /// Wall-clock seconds since the epoch (for the Date header).
    static func wallClockSeconds() -> Int { Int(LoupeSystem.wallClockNanoseconds() / 1_000_000_000) }

    static func processorCount() -> Int {
        availableProcessorCount()
    }
}

/// An IPv4 or IPv6 socket address.
public struct SocketAddress: Sendable, CustomStringConvertible {
    var storage: sockaddr_storage

    init(storage: sockaddr_storage) { self.storage = storage }

    /// Parses a numeric host ("127.0.0.1", "0.0.0.0", "::1", "::") and a port.
    public init?(host: String, port: Int) {
        var s = sockaddr_storage()
        if host.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else { return nil }
            withUnsafeMutableBytes(of: &s) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else { return nil }
            withUnsafeMutableBytes(of: &s) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
        }
        storage = s
    }

    var family: Int32 { Int32(storage.ss_family) }

    var length: socklen_t {
        family == AF_INET6 ? socklen_t(MemoryLayout<sockaddr_in6>.size) : socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var s = storage
        let len = length
        return try withUnsafePointer(to: &s) { (p) throws(E) -> R in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sp) throws(E) -> R in try body(sp, len) }
        }
    }

    public var port: Int {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET6 {
                return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            }
            return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
    }

    public var host: String {
        withUnsafeBytes(of: storage) { raw -> String in
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            if family == AF_INET6 {
                var a = raw.load(as: sockaddr_in6.self).sin6_addr
                inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
            } else if family == AF_INET {
                var a = raw.load(as: sockaddr_in.self).sin_addr
                inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
            } else {
                return "unknown"
            }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    public var description: String { family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
