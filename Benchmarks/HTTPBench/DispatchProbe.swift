// The measurement behind LoupeHTTP's choice of epoll loops over DispatchSource (see
// docs/http-runtime.md): the same parser, writer and handler as the real server, but driven by
// one DispatchSourceRead per connection on `queues` serial queues, the Dispatch-only design
// DESIGN.md describes. A probe, not a server: it assumes tiny responses fit the socket buffer
// (no write sources) and has no timeouts or limits.
//
//   loupe-http-bench --dispatch-probe [--port N] [--loops N]

import Dispatch
import LoupeHTTP
#if canImport(Glibc)
import Glibc
#endif

final class ProbeConnection: @unchecked Sendable {
    let fd: Int32
    var parser = HTTPParser()
    var parts: [HTTPPart] = []
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    var source: DispatchSourceRead?
    init(fd: Int32) { self.fd = fd }
}

func runDispatchProbe(port: Int, queues: Int, handler: @escaping HTTPHandler) -> Never {
    signal(SIGPIPE, SIG_IGN)
    let listenFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(listenFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    listen(listenFD, 1024)
    _ = fcntl(listenFD, F_SETFL, O_NONBLOCK)
    let serialQueues = (0..<max(1, queues)).map { DispatchQueue(label: "probe-\($0)") }
    let writer = ResponseWriter()
    nonisolated(unsafe) var next = 0
    let acceptSource = DispatchSource.makeReadSource(fileDescriptor: listenFD, queue: serialQueues[0])
    acceptSource.setEventHandler {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 { return }
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let queue = serialQueues[next % serialQueues.count]
            next += 1
            let c = ProbeConnection(fd: fd)
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            c.source = source
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
            source.setEventHandler {
                var out: [UInt8] = []
                while true {
                    let n = read(c.fd, buffer.baseAddress, buffer.count)
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { source.cancel(); return }
                    if n < 0 { break }
                    c.parts.removeAll(keepingCapacity: true)
                    do { try c.parser.feed(Array(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))[...], into: &c.parts) } catch { source.cancel(); return }
                    for part in c.parts {
                        switch part {
                        case .head(let h): c.head = h
                        case .body(let s): c.body.append(contentsOf: s)
                        case .end:
                            guard let h = c.head else { continue }
                            let request = h.makeRequest(body: c.body)
                            c.body = []
                            struct Sink: HTTPResponseSink, @unchecked Sendable {
                                let box: UnsafeMutablePointer<HTTPResponse?>
                                func respond(_ response: HTTPResponse) { box.pointee = response }
                            }
                            let box = UnsafeMutablePointer<HTTPResponse?>.allocate(capacity: 1)
                            box.initialize(to: nil)
                            handler(request, Sink(box: box))
                            if let r = box.pointee { writer.write(r, context: HTTPResponseContext(head: h), into: &out) }
                            box.deinitialize(count: 1); box.deallocate()
                        }
                    }
                }
                if !out.isEmpty { _ = out.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
            }
            source.setCancelHandler { close(c.fd); buffer.deallocate(); c.source = nil }
            source.resume()
        }
    }
    acceptSource.resume()
    print("dispatch probe listening on 127.0.0.1:\(port) queues=\(serialQueues.count)")
    dispatchMain()
}
