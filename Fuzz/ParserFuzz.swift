// libFuzzer target for HTTPParser. Built by Fuzz/run.sh from this file plus the parser's
// sources (no package, no Foundation). Besides "does not crash or trip ASan", it checks:
//   - the verdict and the parts do not depend on how the bytes are cut into reads;
//   - parts are well formed: head, body*, end per request; body bytes match the framing;
//   - a rejected input's error has a 4xx/5xx status and a non-empty code.
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
    let cut = input.isEmpty ? 0 : Int(data[0]) * input.count / 255
    let split = parse(input, cuts: [cut])
    precondition(split == whole, "verdict depends on the split at \(cut)")
    if input.count <= 300 {
        let bytewise = parse(input, cuts: Array(0...input.count))
        precondition(bytewise == whole, "verdict differs byte by byte")
    }
    return 0
}
