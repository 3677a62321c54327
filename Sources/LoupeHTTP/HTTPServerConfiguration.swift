/// Everything the server can be told, with every default in one place.
///
/// Durations are in seconds (Double). A limit of 0 means "no limit" only where it says so.
public struct HTTPServerConfiguration: Sendable {
    // MARK: listening

    /// Numeric address to bind ("0.0.0.0", "127.0.0.1", "::"). Default "0.0.0.0".
    public var host: String = "0.0.0.0"
    /// TCP port; 0 picks a free port (read it back from `HTTPServer.port`). Default 8080.
    public var port: Int = 8080
    /// listen(2) backlog. Default 1024 (the kernel caps it at net.core.somaxconn).
    public var backlog: Int = 1024

    // MARK: threads

    /// Event-loop threads (each an epoll loop owning its connections). Default: the number of
    /// online CPUs.
    public var eventLoopThreads: Int = Syscall.processorCount()
    /// Threads that run handlers. Handlers never run on an event loop (a slow handler cannot
    /// stall other connections' I/O) unless `runHandlersOnEventLoop` is set. Default: the number
    /// of online CPUs. Bounded: requests wait in the queue when all are busy.
    public var handlerThreads: Int = Syscall.processorCount()
    /// Run the handler directly on the connection's event loop (saves two thread hand-offs per
    /// request). Only for handlers that never block. Default false.
    public var runHandlersOnEventLoop: Bool = false
    /// After handing requests to the handler threads, an event loop with nothing else to do polls
    /// for their responses this long (seconds) before it sleeps in epoll_wait, saving the eventfd
    /// wake-up. Measured on the 2-vCPU build VM it helps a little at one connection and costs CPU
    /// under load when cores are free (docs/http-runtime.md), so it is off by default. Capped at
    /// 0.01. Default 0.
    public var responseSpinWait: Double = 0
    /// An event loop that has just handled events and would now sleep in epoll_wait first yields
    /// its core once (`sched_yield`) and looks again. It pays when the loops' cores are shared with
    /// the threads that produce their work — the client on the same machine (a sidecar proxy, a
    /// load generator), more loops than cores: measured on the 2-vCPU build VM with wrk beside the
    /// server, 97k → 124k req/s and 9.2 → 8.2 µs CPU per request at 64 connections. It costs badly
    /// when an unrelated CPU-bound thread shares the core, which then keeps it for a whole time
    /// slice: with two busy loops beside the server, 73k → 31k req/s and p50 0.46 → 1.9 ms. A yield's
    /// length does not tell the two apart (the client's turns also last over a millisecond), so it
    /// is off by default (docs/http-runtime.md). Default false.
    public var yieldBeforeSleep: Bool = false

    // MARK: limits

    /// Open connections at most; a connection beyond it gets `503` + close. Default 10 000.
    public var maxConnections: Int = 10_000
    /// Requests served on one connection before it is closed (`Connection: close` on the last
    /// response). 0 = unlimited. Default 10 000.
    public var maxRequestsPerConnection: Int = 1000
    /// Largest request body accepted (413 above it, checked against Content-Length before any
    /// body byte is read, and while reading chunked bodies). Default 16 MiB.
    public var maxBodyBytes: Int = 16 << 20
    /// Parser limits: request line (414 above it; default 8 KiB), header section after the
    /// request line (431; default 16 KiB), header field count (431; default 100).
    public var maxHeaderBytes: Int = 16 << 10
    public var maxRequestLineBytes: Int = 8 << 10
    public var maxHeaderCount: Int = 100
    /// Longest chunk-size line of a chunked body (with extensions). Default 1 KiB.
    public var maxChunkLineBytes: Int = 1024

    /// The limits above, as the parser takes them.
    public var parserLimits: HTTPParserLimits {
        HTTPParserLimits(maxRequestLineBytes: maxRequestLineBytes, maxHeaderBytes: maxHeaderBytes,
                         maxHeaderCount: maxHeaderCount, maxBodyBytes: maxBodyBytes, maxChunkLineBytes: maxChunkLineBytes)
    }

    // MARK: timeouts (seconds)

    /// From a connection's accept, or the first byte of a request, until its whole head has
    /// arrived. 408 + close when exceeded (slowloris). Default 10 s.
    public var headerReadTimeout: Double = 10
    /// Longest gap without any body byte while reading a body. 408 + close. Default 30 s.
    public var bodyReadTimeout: Double = 30
    /// Minimum average body rate in bytes/s, enforced after `minimumBodyRateGracePeriod` from the
    /// start of the body (a trickling client cannot hold a connection). 0 disables. Default 240
    /// bytes/s after 5 s (Kestrel's values).
    public var minimumBodyBytesPerSecond: Double = 240
    public var minimumBodyRateGracePeriod: Double = 5
    /// How long a keep-alive connection may sit idle between requests before it is closed
    /// (silently). Default 75 s (nginx's; above common load-balancer idle timeouts of 60 s).
    public var keepAliveIdleTimeout: Double = 75
    /// Longest time without write progress while a response is pending (a client that stopped
    /// reading). Close when exceeded. Default 30 s.
    public var writeTimeout: Double = 30
    /// After EMFILE/ENFILE (or ENOBUFS/ENOMEM) from accept, stop accepting this long, keep
    /// serving open connections, then try again. Default 0.05 s.
    public var acceptBackoff: Double = 0.05

    // MARK: behaviour

    /// Value of the `Server` header; nil omits it. Default "Loupe".
    public var serverName: String? = "Loupe"
    /// Compress responses with gzip (level 5) when the client accepts it and the body is at least
    /// this many bytes and of a compressible type. 0 disables gzip. Default 1024.
    public var gzipMinimumBytes: Int = 1024

    /// TLS: PEM certificate chain and private key files. nil = plain HTTP. Default nil.
    public var tls: TLSConfiguration? = nil

    public init() {}

    public init(host: String = "0.0.0.0", port: Int) {
        self.host = host
        self.port = port
    }
}

/// TLS settings: TLS 1.2 and 1.3 only; TLS 1.2 limited to ECDHE + AEAD suites.
public struct TLSConfiguration: Sendable {
    public var certificateChainPath: String
    public var privateKeyPath: String
    /// OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults, all AEAD).
    public var tls12Ciphers: String =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}
