// libFuzzer target for HTTPParser (and the router and writer on what it accepts). Built by
// Fuzz/run.sh from this file plus the protocol sources (no package, no Foundation; zlib through
// the CZlib module map). Besides "does not crash or trip ASan", it checks:
//   - the verdict and the parts do not depend on how the bytes are cut into reads;
//   - parts are well formed: head, body*, end per request; body bytes match the framing;
//   - a rejected input's error has a 4xx/5xx status and a non-empty code;
//   - routing an accepted head does not trap, and echoing request-controlled text (decoded
//     path, query, header values) into response headers never yields a malformed response head.
// The first input byte picks a cut point; the rest is the request stream.

struct Outcome: Equatable {
    var parts: [HTTPPart]
    var error: HTTPParseError?
}

let fuzzLimits = HTTPParserLimits(maxRequestLineBytes: 200, maxHeaderBytes: 400, maxHeaderCount: 12,
                                  maxBodyBytes: 2000, maxChunkLineBytes: 64)

func parse(_ input: [UInt8], cuts: [Int]) -> Outcome {
    var parser = HTTPParser(limits: fuzzLimits)
    var parts: [HTTPPart] = []
    var start = 0
    do {
        for cut in cuts + [input.count] where cut >= start && cut <= input.count {
            let piece = Array(input[start..<cut])
            try parser.feed(piece[...], into: &parts)
            start = cut
        }
    } catch {
        return Outcome(parts: merge(parts), error: error)
    }
    return Outcome(parts: merge(parts), error: nil)
}

func merge(_ parts: [HTTPPart]) -> [HTTPPart] {
    var out: [HTTPPart] = []
    for part in parts {
        if case .body(let b) = part {
            precondition(!b.isEmpty, "empty body part")
            if case .body(let previous)? = out.last {
                out[out.count - 1] = .body(ArraySlice(Array(previous) + Array(b)))
                continue
            }
        }
        out.append(part)
    }
    return out
}

func checkStructure(_ outcome: Outcome) {
    var open: HTTPRequestHead? = nil
    var bodyBytes = 0
    for part in outcome.parts {
        switch part {
        case .head(let head):
            precondition(open == nil, "head inside a request")
            precondition(head.version.major == 1)
            if case .contentLength(let n) = head.bodyFraming { precondition(n <= fuzzLimits.maxBodyBytes) }
            open = head
            bodyBytes = 0
        case .body(let b):
            precondition(open != nil, "body outside a request")
            bodyBytes += b.count
            precondition(bodyBytes <= fuzzLimits.maxBodyBytes)
        case .end:
            guard let head = open else { preconditionFailure("end without head") }
            if case .contentLength(let n) = head.bodyFraming { precondition(bodyBytes == n, "body length mismatch") }
            if head.bodyFraming == .none { precondition(bodyBytes == 0) }
            open = nil
        }
    }
    if let error = outcome.error {
        precondition(error.status >= 400 && error.status < 600 && !error.code.isEmpty)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let whole = parse(input, cuts: [])
    checkStructure(whole)
    checkRouterAndWriter(whole)
    let cut = input.isEmpty ? 0 : Int(data[0]) * input.count / 255
    let split = parse(input, cuts: [cut])
    precondition(split == whole, "verdict depends on the split at \(cut)")
    if input.count <= 300 {
        let bytewise = parse(input, cuts: Array(0...input.count))
        precondition(bytewise == whole, "verdict differs byte by byte")
    }
    return 0
}

// MARK: - Router and writer on what the parser accepted

let fuzzRouter: Router = {
    var builder = RouterBuilder()
    let handler: HTTPHandler = { _, _ in }
    builder.add(.GET, "/", handler)
    builder.add(.GET, "/health", handler)
    builder.add(.POST, "/v2/models/{model}/infer", handler)
    builder.add(.POST, "/v2/models/{model}/versions/{version}/infer", handler)
    builder.add(.GET, "/v2/models/special/stats", handler)
    return builder.freeze()
}()

let fuzzWriter = ResponseWriter(dates: HTTPDateCache(now: { 0 }))

/// Routes each accepted head, then echoes request-controlled text (decoded path, query, header
/// values) into response headers and checks the serialized head is still well formed: no
/// response splitting, whatever the request smuggled in through percent-encoding.
func checkRouterAndWriter(_ outcome: Outcome) {
    for part in outcome.parts {
        guard case .head(let head) = part else { continue }
        let request = head.makeRequest(body: [])
        switch fuzzRouter.match(request) {
        case .found(let template, let parameters, _):
            precondition(template.hasPrefix("/"))
            for (_, v) in parameters { precondition(!v.isEmpty) }
        case .methodNotAllowed(_, let allowed), .options(_, let allowed):
            precondition(!allowed.isEmpty)
        case .notFound:
            break
        }
        var headers = HTTPHeaders([("X-Path", head.path), ("Content-Type", "text/plain")])
        for item in head.query { headers.add("X-Q", item.value); headers.add(item.name, "v") }
        for field in head.headers { headers.add("X-Echo", field.value) }
        var out: [UInt8] = []
        let body = Array(head.path.utf8) + Array(repeating: 0x61, count: 1100)
        fuzzWriter.write(HTTPResponse(status: 200, headers: headers, body: body),
                         context: HTTPResponseContext(head: head), into: &out)
        var end = 0
        while end + 3 < out.count && !(out[end] == 13 && out[end + 1] == 10 && out[end + 2] == 13 && out[end + 3] == 10) { end += 1 }
        precondition(end + 3 < out.count, "no end of head")
        var lineStart = 0
        var first = true
        var k = 0
        while k <= end {
            if k == end || (out[k] == 13 && out[k + 1] == 10) {
                if !first {
                    var c = lineStart
                    while c < k && isTokenByte(out[c]) { c += 1 }
                    precondition(c > lineStart && c < k && out[c] == 0x3A, "malformed response header line")
                }
                first = false
                k += 2
                lineStart = k
                continue
            }
            precondition(out[k] != 13 && out[k] != 10 && out[k] != 0, "bare CR/LF/NUL in response head")
            k += 1
        }
    }
}
