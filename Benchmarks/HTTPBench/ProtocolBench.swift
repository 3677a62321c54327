// Micro-benchmark of the protocol code alone (no sockets): parse, route, serialize.
// Run: `swift build -c release --product loupe-http-bench && .build/release/loupe-http-bench --protocol`
// (main.swift, owned by the server side, calls `ProtocolBench.run()` for `--protocol`).
// Prints CPU ns per operation (thread CPU time, so other load on the machine matters less):
// the median of 7 timed rounds after a warm-up round.

import Glibc
import LoupeHTTP

enum ProtocolBench {
    /// What wrk sends (`wrk -t2 -c64 http://127.0.0.1:8084/health`).
    static let wrkRequest = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1:8084\r\n\r\n".utf8)
    /// A curl-like request with a small JSON body.
    static let curlRequest = Array(("POST /v2/models/fashion/versions/3/infer?verbose=1 HTTP/1.1\r\nHost: localhost:8080\r\n"
        + "User-Agent: curl/8.5.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nContent-Type: application/json\r\n"
        + "X-Request-ID: 3f2a9c1e-5b7d-4e2f-9a1c-8d6e4b2f1a0c\r\nContent-Length: 27\r\n\r\n{\"inputs\":[{\"name\":\"x\"}]}\n").utf8)

    static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Median ns per call of `body` over `iterations` calls, 7 rounds.
    static func measure(_ name: String, iterations: Int, perCall: Int = 1, _ body: () -> Int) {
        var sink = 0
        for _ in 0..<iterations / 4 { sink &+= body() }
        var rounds: [Double] = []
        for _ in 0..<7 {
            let start = nowNanos()
            for _ in 0..<iterations { sink &+= body() }
            rounds.append(Double(nowNanos() - start) / Double(iterations * perCall))
        }
        rounds.sort()
        let line = "\(name): \(Int(rounds[3].rounded())) ns/op (min \(Int(rounds[0].rounded())), max \(Int(rounds[6].rounded())))"
        print(line + (sink == 42 ? " " : ""))
    }

    static func run() {
        let wrk = wrkRequest
        measure("parse wrk GET (\(wrk.count) B)", iterations: 200_000) {
            var parser = HTTPParser()
            var parts: [HTTPPart] = []
            parts.reserveCapacity(4)
            do { try parser.feed(wrk[...], into: &parts) } catch { return -1 }
            return parts.count
        }
        let curl = curlRequest
        measure("parse curl POST, 7 fields + body (\(curl.count) B)", iterations: 100_000) {
            var parser = HTTPParser()
            var parts: [HTTPPart] = []
            parts.reserveCapacity(4)
            do { try parser.feed(curl[...], into: &parts) } catch { return -1 }
            return parts.count
        }
        var pipelined: [UInt8] = []
        for _ in 0..<16 { pipelined += wrk }
        measure("parse 16 pipelined GETs, per request", iterations: 20_000, perCall: 16) {
            var parser = HTTPParser()
            var parts: [HTTPPart] = []
            parts.reserveCapacity(40)
            do { try parser.feed(pipelined[...], into: &parts) } catch { return -1 }
            return parts.count
        }
        var builder = RouterBuilder()
        let handler: HTTPHandler = { _, _ in }
        for path in ["/health", "/health/live", "/health/ready", "/metrics", "/predict", "/v2", "/v2/health/live", "/v2/health/ready"] {
            builder.add(.GET, path, handler)
        }
        builder.add(.GET, "/v2/models/{model}", handler)
        builder.add(.GET, "/v2/models/{model}/ready", handler)
        builder.add(.POST, "/v2/models/{model}/infer", handler)
        builder.add(.POST, "/v2/models/{model}/versions/{version}/infer", handler)
        let router = builder.freeze()
        let healthRequest = HTTPRequest(method: .GET, target: "/health", path: "/health")
        measure("route GET /health", iterations: 200_000) {
            if case .found = router.match(healthRequest) { return 1 }
            return 0
        }
        let inferRequest = HTTPRequest(method: .POST, target: "/v2/models/fashion/versions/3/infer",
                                       path: "/v2/models/fashion/versions/3/infer")
        measure("route POST /v2/models/{m}/versions/{v}/infer", iterations: 200_000) {
            if case .found(_, let p, _) = router.match(inferRequest) { return p.count }
            return 0
        }
        let writer = ResponseWriter()
        let response = HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                    body: Array("{\"status\":\"ok\"}".utf8))
        let context = HTTPResponseContext()
        var out: [UInt8] = []
        out.reserveCapacity(512)
        measure("write small JSON response", iterations: 200_000) {
            out.removeAll(keepingCapacity: true)
            writer.write(response, context: context, into: &out)
            return out.count
        }
        let bigJSON = HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                   body: Array(String(repeating: "{\"class\":3,\"label\":\"Dress\",\"confidence\":0.97},", count: 100).utf8))
        let gzipContext = HTTPResponseContext(acceptEncoding: "gzip")
        measure("write 4.6 KB JSON response with gzip", iterations: 5_000) {
            out.removeAll(keepingCapacity: true)
            writer.write(bigJSON, context: gzipContext, into: &out)
            return out.count
        }
    }
}
