import Testing
@testable import LoupeHTTP

/// Malformed and smuggling-shaped requests, each with the error (and so the status) it must get.
/// Every case is also fed split at every byte offset: the verdict must not depend on the reads.
let malformedRequests: [(name: String, raw: String, error: HTTPParseError)] = [
    // Framing: Content-Length and Transfer-Encoding (RFC 9112 §6.1, §6.3)
    ("CL then TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .contentLengthWithTransferEncoding),
    ("TE then CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", .contentLengthWithTransferEncoding),
    ("CL list differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello", .conflictingContentLength),
    ("CL fields differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", .conflictingContentLength),
    ("CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
    ("CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", .invalidContentLength),
    ("CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", .invalidContentLength),
    ("CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nhello", .invalidContentLength),
    ("CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", .invalidContentLength),
    ("CL empty list element", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\nhello", .invalidContentLength),
    ("CL decimal point", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\nhello", .invalidContentLength),
    ("CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", .invalidContentLength),
    ("CL over limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16777217\r\n\r\n", .bodyTooLarge(limit: HTTPParserLimits.default.maxBodyBytes)),
    ("TE gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
    ("TE split fields gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
    ("TE chunked then gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
    ("TE gzip only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferCoding),
    ("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", .unsupportedTransferCoding),
    ("TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", .chunkedNotFinal),
    ("TE chunked with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n", .chunkedNotFinal),
    ("TE look-alike", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
    ("TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", .chunkedNotFinal),
    ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .transferEncodingInHTTP10),
    ("TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", .whitespaceBeforeColon),
    // Chunked syntax (RFC 9112 §7.1)
    ("chunk size not hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunkSize),
    ("chunk size empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .invalidChunkSize),
    ("chunk size leading space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize),
    ("chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", .invalidChunkSize),
    ("chunk size 0x prefix", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n", .invalidChunkSize),
    ("chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", .chunkSizeOverflow),
    ("chunk size over body limit", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000001\r\n", .bodyTooLarge(limit: HTTPParserLimits.default.maxBodyBytes)),
    ("chunk size bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", .invalidChunkSize),
    ("chunk size CR without LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n", .bareCarriageReturn),
    ("chunk data too long", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", .invalidChunkTerminator),
    ("chunk data bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", .invalidChunkTerminator),
    ("chunk ext bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n", .invalidChunkExtension),
    ("chunk ext control char", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\u{01}\r\nhello\r\n0\r\n\r\n", .invalidChunkExtension),
    ("chunk ext no name", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n", .invalidChunkExtension),
    ("chunk ext unterminated quote", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n", .invalidChunkExtension),
    ("chunk ext garbage after size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", .invalidChunkExtension),
    ("chunk line too long", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;" + String(repeating: "a", count: 1100) + "\r\n", .chunkLineTooLong(limit: 1024)),
    ("trailer obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", .obsoleteLineFolding),
    ("trailer NUL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\u{0}b\r\n\r\n", .invalidHeaderValue),
    ("trailer no colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnocolon\r\n\r\n", .invalidHeaderName),
    // Field syntax (RFC 9112 §5, §2.2)
    ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n", .obsoleteLineFolding),
    ("whitespace after request line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", .obsoleteLineFolding),
    ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", .whitespaceBeforeColon),
    ("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", .whitespaceBeforeColon),
    ("empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", .invalidHeaderName),
    ("bad char in name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): x\r\n\r\n", .invalidHeaderName),
    ("no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", .invalidHeaderName),
    ("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .invalidHeaderValue),
    ("control char in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1B}b\r\n\r\n", .invalidHeaderValue),
    ("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", .invalidHeaderValue),
    ("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", .bareCarriageReturn),
    ("bare CR line end", "GET / HTTP/1.1\rHost: a\r\n\r\n", .bareCarriageReturn),
    ("bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", .bareLineFeed),
    ("bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", .bareLineFeed),
    // Host (RFC 9112 §3.2)
    ("missing Host", "GET / HTTP/1.1\r\n\r\n", .missingHost),
    ("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .duplicateHost),
    ("duplicate Host identical", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", .duplicateHost),
    ("duplicate Host HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", .duplicateHost),
    ("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", .invalidHost),
    ("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", .invalidHost),
    ("Host with bad port", "GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", .invalidHost),
    ("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", .invalidHost),
    // Request line (RFC 9112 §3)
    ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion),
    ("HTTP/0.9 style version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", .unsupportedVersion),
    ("HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", .unsupportedVersion),
    ("no version", "GET /\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", .invalidVersion),
    ("two-digit version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", .invalidVersion),
    ("version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", .invalidVersion),
    ("trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidVersion),
    ("bad method char", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidMethod),
    ("method with slash", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidMethod),
    ("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", .methodNotImplemented),
    ("relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("fragment in target", "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("fragment in query", "GET /a?x=1#frag HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("asterisk not OPTIONS", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("absolute-form other scheme", "GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("absolute-form userinfo", "GET http://user@a/b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("absolute-form empty authority", "GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("non-ASCII in target", "GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("control char in target", "GET /a\u{01}b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    // Percent-encoding (RFC 3986 §2.1)
    ("bad percent hex", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", .invalidPercentEncoding),
    ("truncated percent", "GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n", .invalidPercentEncoding),
    ("encoded NUL", "GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidPercentEncoding),
    ("invalid UTF-8", "GET /a%C3 HTTP/1.1\r\nHost: a\r\n\r\n", .invalidPercentEncoding),
    ("bad percent in query", "GET /a?x=%G1 HTTP/1.1\r\nHost: a\r\n\r\n", .invalidPercentEncoding),
    // Expect (RFC 9110 §10.1.1)
    ("unknown expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", .unsupportedExpectation),
]

struct ParserStrictnessTests {
    @Test(arguments: malformedRequests.indices)
    func malformedRequestIsRejected(_ index: Int) {
        let (name, raw, expected) = malformedRequests[index]
        let input = bytes(raw)
        #expect(parseError(raw) == expected, "\(name)")
        // Same verdict whatever the reads: split at every offset, and byte by byte.
        for cut in 0...input.count {
            var got: HTTPParseError? = nil
            do { _ = try parseAll(input, cuts: [cut]) } catch { got = error }
            #expect(got == expected, "\(name) split at \(cut)")
            if got != expected { break }
        }
        var got: HTTPParseError? = nil
        do { _ = try parseAll(input, cuts: Array(0...input.count)) } catch { got = error }
        #expect(got == expected, "\(name) byte by byte")
    }

    @Test func statusesAreTheOnesTheRFCNames() {
        #expect(HTTPParseError.requestLineTooLong(limit: 1).status == 414)
        #expect(HTTPParseError.headerSectionTooLarge(limit: 1).status == 431)
        #expect(HTTPParseError.tooManyHeaders(limit: 1).status == 431)
        #expect(HTTPParseError.bodyTooLarge(limit: 1).status == 413)
        #expect(HTTPParseError.unsupportedTransferCoding.status == 501)
        #expect(HTTPParseError.methodNotImplemented.status == 501)
        #expect(HTTPParseError.unsupportedVersion.status == 505)
        #expect(HTTPParseError.unsupportedExpectation.status == 417)
        #expect(HTTPParseError.contentLengthWithTransferEncoding.status == 400)
        #expect(HTTPParseError.chunkedNotFinal.status == 400)
        for (_, _, error) in malformedRequests {
            #expect(!error.code.isEmpty && !error.code.contains(" "))
            #expect(error.description.hasSuffix("."))
        }
    }

    @Test func requestLineLimit() {
        let limits = HTTPParserLimits(maxRequestLineBytes: 64)
        let ok = "GET /" + String(repeating: "a", count: 64 - 14) + " HTTP/1.1\r\nHost: a\r\n\r\n"
        #expect(parseError(ok, limits: limits) == nil)
        let long = "GET /" + String(repeating: "a", count: 64 - 13) + " HTTP/1.1\r\nHost: a\r\n\r\n"
        #expect(parseError(long, limits: limits) == .requestLineTooLong(limit: 64))
        // Detected before the line ends: a client cannot make us buffer an endless line.
        var parser = HTTPParser(limits: limits)
        #expect(throws: HTTPParseError.requestLineTooLong(limit: 64)) {
            _ = try parser.feed(bytes("GET /" + String(repeating: "a", count: 100)))
        }
    }

    @Test func headerBytesLimit() {
        let limits = HTTPParserLimits(maxHeaderBytes: 100)
        // "Host: a\r\n" = 9 bytes, "X: " + 86 + "\r\n" = 91 bytes → 100 exactly.
        let fits = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 86) + "\r\n\r\n"
        #expect(parseError(fits, limits: limits) == nil)
        let over = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 87) + "\r\n\r\n"
        #expect(parseError(over, limits: limits) == .headerSectionTooLarge(limit: 100))
        var parser = HTTPParser(limits: limits)
        #expect(throws: HTTPParseError.headerSectionTooLarge(limit: 100)) {
            _ = try parser.feed(bytes("GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: 200)))
        }
    }

    @Test func headerCountLimit() {
        let limits = HTTPParserLimits(maxHeaderCount: 3)
        #expect(parseError("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits: limits) == nil)
        #expect(parseError("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits) == .tooManyHeaders(limit: 3))
        let trailers = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"
        #expect(parseError(trailers, limits: limits) == .tooManyHeaders(limit: 3))
    }

    @Test func bodyLimitIsCheckedBeforeTheBody() throws {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        // Content-Length over the limit: rejected from the head alone, no head part emitted.
        var parser = HTTPParser(limits: limits)
        var parts: [HTTPPart] = []
        #expect(throws: HTTPParseError.bodyTooLarge(limit: 10)) {
            try parser.feed(bytes("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")[...], into: &parts)
        }
        #expect(parts.isEmpty)
        #expect(parseError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits) == nil)
        // Chunked: the running total is enforced before each chunk's data.
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n4\r\n6789\r\n1\r\n"
        #expect(parseError(chunked, limits: limits) == .bodyTooLarge(limit: 10))
        #expect(parseError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n", limits: limits) == nil)
    }

    @Test func trailerSectionLimit() {
        let limits = HTTPParserLimits(maxHeaderBytes: 50)
        let raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "t", count: 60) + "\r\n\r\n"
        #expect(parseError(raw, limits: limits) == .headerSectionTooLarge(limit: 50))
    }

    @Test func parseErrorAnswerUsesStatusAndCode() {
        for (_, _, error) in malformedRequests {
            let r = HTTPResponse.parseError(error)
            #expect(r.status == error.status)
            #expect(r.headers["connection"] == "close")
            #expect(String(decoding: r.body, as: UTF8.self).contains("\"code\":\"\(error.code)\""))
        }
    }
}
