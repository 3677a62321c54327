// Compressed request bodies (`Content-Encoding: gzip` / `deflate`), as tritonclient's
// `request_compression_algorithm` and many HTTP clients send them. Inflated once, at the route
// boundary, bounded by `limits.max_body_bytes` (a zip bomb gets 413 after at most that many bytes
// of output, never more memory); an encoding the server does not implement gets 415 naming it.
import LoupeData
import LoupeHTTP

enum ContentCoding {
    /// The request with its body inflated, or the error to answer with. Requests without a
    /// `Content-Encoding` (or with `identity`) come back as they are.
    static func decode(_ request: HTTPRequest, maxBytes: Int) -> Result<HTTPRequest, ServiceError> {
        guard let header = request.headers["Content-Encoding"] else { return .success(request) }
        let codings = header.split(separator: ",").map { String($0).trimmingSpaces().lowercased() }.filter { $0 != "identity" && !$0.isEmpty }
        guard !codings.isEmpty else { return .success(request) }
        guard codings.count == 1 else {
            return .failure(ServiceError(status: 415, code: "unsupported_content_encoding",
                                         "one Content-Encoding at most (gzip or deflate) is supported, received '\(echoed(header))'"))
        }
        let format: Inflater.Format
        switch codings[0] {
        case "gzip", "x-gzip": format = .gzip
        case "deflate": format = .zlib
        default:
            return .failure(ServiceError(status: 415, code: "unsupported_content_encoding",
                                         "Content-Encoding '\(echoed(codings[0]))' is not supported; send gzip, deflate or an uncompressed body"))
        }
        var decoded = request
        do {
            let inflater = try Inflater(request.body, format: format, maxOutput: .max)
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while !inflater.isAtEnd {
                let n = try inflater.read(into: &chunk, count: chunk.count)
                out.append(contentsOf: chunk[0..<n])
                if out.count > maxBytes {
                    return .failure(.tooLarge("the \(codings[0]) body inflates to more than the limit of \(maxBytes) bytes (limits.max_body_bytes)"))
                }
            }
            decoded.body = out
        } catch {
            return .failure(.badRequest("invalid_content_encoding", "the body is not valid \(codings[0]) data: \(error)"))
        }
        decoded.headers.remove("Content-Encoding")
        return .success(decoded)
    }
}
