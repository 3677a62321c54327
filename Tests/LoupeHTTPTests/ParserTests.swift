import Testing
@testable import LoupeHTTP

/// Feeds `bytes` in pieces cut at `cuts` and returns the parts, with adjacent body parts merged
/// (how a body is split into parts depends on the reads; its bytes must not).
func parseAll(_ bytes: [UInt8], cuts: [Int] = [], limits: HTTPParserLimits = .default) throws(HTTPParseError) -> [HTTPPart] {
    var parser = HTTPParser(limits: limits)
    var parts: [HTTPPart] = []
    var start = 0
    for cut in cuts + [bytes.count] where cut >= start {
        // A fresh array per read, as a socket would give.
        let piece = Array(bytes[start..<cut])
        try parser.feed(piece[...], into: &parts)
        start = cut
    }
    return mergeBodies(parts)
}

func mergeBodies(_ parts: [HTTPPart]) -> [HTTPPart] {
    var out: [HTTPPart] = []
    for part in parts {
        if case .body(let b) = part {
            #expect(!b.isEmpty, "empty body part")
            if case .body(let previous)? = out.last {
                out[out.count - 1] = .body(ArraySlice(Array(previous) + Array(b)))
                continue
            }
        }
        out.append(part)
    }
    return out
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func parseError(_ s: String, limits: HTTPParserLimits = .default) -> HTTPParseError? {
    do { _ = try parseAll(bytes(s), limits: limits); return nil } catch { return error }
}

struct ParserBasicsTests {
    /// The token-byte bitmap against the RFC's list, for every byte value.
    @Test func tokenBytesAreTheRFCsTchars() {
        for b in 0...255 { #expect(isTokenByte(UInt8(b)) == isTokenByteReference(UInt8(b)), "byte \(b)") }
    }

    @Test func simpleGet() throws {
        let parts = try parseAll(bytes("GET /v2/models/fashion?top_k=3&x HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\r\n"))
        #expect(parts.count == 2)
        guard case .head(let head) = parts[0] else { Issue.record("no head"); return }
        #expect(head.method == .GET)
        #expect(head.target == "/v2/models/fashion?top_k=3&x")
        #expect(head.path == "/v2/models/fashion")
        #expect(head.query.count == 2)
        #expect(head.query.first?.name == "top_k" && head.query.first?.value == "3")
        #expect(head.query.last?.name == "x" && head.query.last?.value == "")
        #expect(head.version == (1, 1))
        #expect(head.headers["host"] == "localhost:8080")
        #expect(head.headers.count == 2)
        #expect(head.host == "localhost:8080")
        #expect(head.keepAlive)
        #expect(!head.expectContinue)
        #expect(head.bodyFraming == .none)
        #expect(parts[1] == .end(trailers: HTTPHeaders()))
    }

    @Test func contentLengthBody() throws {
        let parts = try parseAll(bytes("POST /predict HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"))
        #expect(parts.count == 3)
        guard case .head(let head) = parts[0] else { Issue.record("no head"); return }
        #expect(head.contentLength == 5)
        #expect(head.hasBody)
        #expect(parts[1] == .body(ArraySlice(bytes("hello"))))
        #expect(parts[2] == .end(trailers: HTTPHeaders()))
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let raw = "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value;flag\r\nhello\r\n"
            + "6 ; q=\"quoted \\\" ;value\"\r\n world\r\n"
            + "0\r\nX-Checksum: abc\r\nX-Other:  1 \r\n\r\n"
        let parts = try parseAll(bytes(raw))
        #expect(parts.count == 3)
        guard case .head(let head) = parts[0] else { Issue.record("no head"); return }
        #expect(head.isChunked)
        #expect(parts[1] == .body(ArraySlice(bytes("hello world"))))
        #expect(parts[2] == .end(trailers: HTTPHeaders([("X-Checksum", "abc"), ("X-Other", "1")])))
    }

    @Test func keepAliveRules() throws {
        func keepAlive(_ s: String) throws -> Bool {
            guard case .head(let h)? = try parseAll(bytes(s)).first else { return false }
            return h.keepAlive
        }
        #expect(try keepAlive("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(try !keepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
        #expect(try !keepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n"))
        #expect(try !keepAlive("GET / HTTP/1.0\r\n\r\n"))
        #expect(try keepAlive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))
        #expect(try keepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"))
    }

    @Test func expectContinue() throws {
        guard case .head(let h)? = try parseAll(bytes("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")).first
        else { Issue.record("no head"); return }
        #expect(h.expectContinue)
        guard case .head(let h10)? = try parseAll(bytes("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")).first
        else { Issue.record("no head"); return }
        #expect(!h10.expectContinue)
    }

    @Test func absoluteFormAndAsterisk() throws {
        guard case .head(let h)? = try parseAll(bytes("GET http://example.com:80/a%20b?q=1+2 HTTP/1.1\r\nHost: other\r\n\r\n")).first
        else { Issue.record("no head"); return }
        #expect(h.path == "/a b")
        #expect(h.host == "example.com:80")
        #expect(h.query.first?.value == "1 2")
        guard case .head(let h2)? = try parseAll(bytes("GET HTTPS://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")).first
        else { Issue.record("no head"); return }
        #expect(h2.path == "/")
        #expect(h2.query.first?.name == "x")
        guard case .head(let h3)? = try parseAll(bytes("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")).first
        else { Issue.record("no head"); return }
        #expect(h3.path == "*")
    }

    @Test func percentDecodedPathAndQuery() throws {
        guard case .head(let h)? = try parseAll(bytes("GET /a%2Fb/%C3%A9+?n%61me=v%26x&&e= HTTP/1.1\r\nHost: a\r\n\r\n")).first
        else { Issue.record("no head"); return }
        #expect(h.path == "/a/b/é+")
        #expect(h.query.count == 2)
        #expect(h.query[0].name == "name" && h.query[0].value == "v&x")
        #expect(h.query[1].name == "e" && h.query[1].value == "")
    }

    @Test func leadingBlankLinesAreIgnored() throws {
        let parts = try parseAll(bytes("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(parts.count == 2)
    }

    @Test func minorVersionAboveOneIsTreatedAsHTTP11() throws {
        guard case .head(let h)? = try parseAll(bytes("GET / HTTP/1.7\r\nHost: a\r\n\r\n")).first else { Issue.record("no head"); return }
        #expect(h.keepAlive)
        #expect(h.version == (1, 7))
    }

    @Test func identicalDuplicateContentLengthIsAccepted() throws {
        let parts = try parseAll(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nContent-Length: 003\r\n\r\nabc"))
        guard case .head(let h)? = parts.first else { Issue.record("no head"); return }
        #expect(h.contentLength == 3)
        #expect(parts[1] == .body(ArraySlice(bytes("abc"))))
    }

    @Test func headBecomesRequestAndResponseContext() throws {
        let raw = "HEAD /a%20b?x=1 HTTP/1.0\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n"
        guard case .head(let head)? = try parseAll(bytes(raw)).first else { Issue.record("no head"); return }
        let request = head.makeRequest(body: [1, 2], remoteAddress: "127.0.0.1:5000")
        #expect(request.method == .HEAD && request.path == "/a b" && request.queryValue("x") == "1")
        #expect(request.version == (1, 0) && request.body == [1, 2] && request.remoteAddress == "127.0.0.1:5000")
        #expect(request.headers["connection"] == "keep-alive")
        let context = HTTPResponseContext(head: head)
        #expect(context.isHead && context.keepAlive && context.version == (1, 0) && context.acceptEncoding == "gzip")
    }

    @Test func unknownMethodIsPassedOn() throws {
        guard case .head(let h)? = try parseAll(bytes("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n")).first else { Issue.record("no head"); return }
        #expect(h.method == .other("PROPFIND"))
    }

    @Test func obsTextInValuesIsKept() throws {
        guard case .head(let h)? = try parseAll(bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Name: café\t\r\n\r\n")).first
        else { Issue.record("no head"); return }
        #expect(h.headers["x-name"] == "café")
    }
}

struct ParserPipeliningTests {
    @Test func pipelinedRequestsComeOutInOrder() throws {
        let raw = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
            + "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
            + "GET /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            + "GET /ignored HTTP/1.1\r\n\r\n"
        let parts = try parseAll(bytes(raw))
        let paths = parts.compactMap { part -> String? in if case .head(let h) = part { h.path } else { nil } }
        #expect(paths == ["/a", "/b", "/c", "/d"])
        #expect(parts.count == 4 + 4 + 2)
    }

    @Test func stopAfterMessageReturnsConsumedCount() throws {
        let first = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
        let raw = bytes(first + "GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
        var parser = HTTPParser()
        var parts: [HTTPPart] = []
        let consumed = try parser.feed(raw[...], into: &parts, stopAfterMessage: true)
        #expect(consumed == first.utf8.count)
        #expect(parts.count == 2)
        #expect(parser.phase == .idle)
        let rest = try parser.feed(raw[consumed...], into: &parts, stopAfterMessage: true)
        #expect(rest == raw.count - consumed)
        #expect(parts.count == 4)
    }

    @Test func phases() throws {
        var parser = HTTPParser()
        #expect(parser.phase == .idle)
        _ = try parser.feed(bytes("POST / HTTP/1.1\r\nHost: a\r\n"))
        #expect(parser.phase == .head)
        _ = try parser.feed(bytes("Content-Length: 2\r\n\r\nx"))
        #expect(parser.phase == .body)
        _ = try parser.feed(bytes("y"))
        #expect(parser.phase == .idle)
        _ = try parser.feed(bytes("GET / HTTP/1.0\r\n\r\n"))
        #expect(parser.phase == .closed)
        #expect(try parser.feed(bytes("garbage")).isEmpty)
    }

    @Test func earlierRequestsSurviveALaterError() {
        var parser = HTTPParser()
        var parts: [HTTPPart] = []
        do {
            try parser.feed(bytes("GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\n\r\n")[...], into: &parts)
            Issue.record("no error")
        } catch {
            #expect(error == .missingHost)
        }
        #expect(parts.count == 2)
        #expect(parser.phase == .failed)
        #expect(throws: HTTPParseError.missingHost) { try parser.feed(bytes("GET / HTTP/1.1\r\n\r\n")) }
    }
}
