// What a hostile or unusual client meets, with the real binary on loopback (issue 10's list):
// framing the server does not implement, lengths that do not fit, echoed bytes, the keep-alive
// request limit, and the headers every response carries.
import Glibc
import Testing

/// Sends `raw` on a new connection and parses what comes back before the server closes it.
func rawExchange(port: Int, _ raw: String) throws -> HTTPReply {
    try HTTP.parse(HTTP.exchange(port: port, Array(raw.utf8), timeout: 10), method: "GET")
}

@Suite(.serialized) struct HostileClientEndToEndTests {
    @Test func framingTheServerDoesNotImplementIsRefusedClearly() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let host = "Host: 127.0.0.1\r\n"
        // Transfer-Encoding other than chunked (identity, gzip): 501 (RFC 9112 §6.1).
        for coding in ["identity", "gzip", "gzip, chunked"] {
            let r = try rawExchange(port: server.port, "POST /predict HTTP/1.1\r\n\(host)Transfer-Encoding: \(coding)\r\n\r\n")
            #expect(r.status == 501, "Transfer-Encoding: \(coding)")
            #expect(r.text.contains("\"code\":\"unsupported_transfer_coding\""))
        }
        // A method nobody routes: 501, not 404/405.
        let brew = try rawExchange(port: server.port, "BREW /predict HTTP/1.1\r\n\(host)\r\n")
        #expect(brew.status == 501)
        #expect(brew.text.contains("\"code\":\"method_not_implemented\""))
        // A Content-Length past 2^63: 400, not 413 (it is no length at all).
        let huge = try rawExchange(port: server.port, "POST /predict HTTP/1.1\r\n\(host)Content-Length: 99999999999999999999999\r\n\r\n")
        #expect(huge.status == 400)
        #expect(huge.text.contains("\"code\":\"invalid_content_length\""))
        // Every response, errors included, says nosniff.
        for r in [brew, huge] { #expect(r.header("X-Content-Type-Options") == "nosniff") }
        #expect(try HTTP.request(port: server.port, "GET", "/health").header("X-Content-Type-Options") == "nosniff")
    }

    @Test func echoedRequestBytesAreEscapedAndShort() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let script = "%3Cscript%3Ealert(1)%3C/script%3E" + String(repeating: "A", count: 300)
        for (method, target, headers) in [("GET", "/" + script, [(String, String)]()),
                                          ("POST", "/predict?top_k=" + script, [("Content-Type", "image/png")]),
                                          ("POST", "/predict", [("Content-Type", "text/<script>" + String(repeating: "B", count: 300))])] {
            let r = try HTTP.request(port: server.port, method, target, headers: headers, body: [1])
            #expect((400..<500).contains(r.status), "\(method) \(target.prefix(40))")
            #expect(!r.text.contains("<script>"), "\(r.text)")
            #expect(r.body.count < 400, "the error quotes at most 64 bytes of the request: \(r.text)")
            #expect(r.header("Content-Type") == "application/json")
        }
    }

    @Test func keepAliveRequestLimitClosesWithTheLastResponse() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["limits.max_requests_per_connection=3"])
        try server.waitReady()
        let client = KeepAliveClient(port: server.port)
        var seen: [KeepAliveOutcome] = []
        for _ in 0..<4 { seen.append(client.send("GET", "/health/live", headers: [], body: [])) }
        // Three on the first connection (the third says close), the fourth on a new one.
        #expect(seen == [.answered(status: 200, close: false), .answered(status: 200, close: false),
                         .answered(status: 200, close: true), .answered(status: 200, close: false)])
        #expect(client.requestsOnConnection == 1)
    }
}
