// multipart/form-data request bodies (RFC 7578): the file parts of a /predict or /explain upload.
import LoupeData
import LoupeHTTP

extension InputDecoding {
    /// The file parts of a multipart body (parts with a filename, an image content type, or a
    /// field named image/images/file/files), in order.
    static func multipartFiles(_ body: [UInt8], contentType: String) throws(ServiceError) -> [[UInt8]] {
        guard let boundary = parameter("boundary", in: contentType), !boundary.isEmpty else {
            throw .badRequest("invalid_multipart", "multipart/form-data needs a boundary parameter in Content-Type")
        }
        // RFC 2046 §5.1.1. Also what bounds the delimiter search below (body × boundary comparisons).
        guard boundary.utf8.count <= 70 else {
            throw .badRequest("invalid_multipart", "the multipart boundary is \(boundary.utf8.count) characters; expected 1 to 70 (RFC 2046)")
        }
        let delimiter = Array(("--" + boundary).utf8)
        var files: [[UInt8]] = []
        guard var position = find(delimiter, in: body, from: 0) else {
            throw .badRequest("invalid_multipart", "the multipart body does not contain its boundary")
        }
        while true {
            position += delimiter.count
            // "--" after a delimiter ends the body.
            if position + 1 < body.count && body[position] == 0x2D && body[position + 1] == 0x2D { break }
            // Skip to the end of the delimiter line.
            guard let lineEnd = find([0x0D, 0x0A], in: body, from: position) else { break }
            let headerStart = lineEnd + 2
            guard let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: headerStart) else {
                throw .badRequest("invalid_multipart", "a multipart part has no end of headers")
            }
            let headers = String(decoding: body[headerStart..<headerEnd], as: UTF8.self)
            let contentStart = headerEnd + 4
            guard let next = find([0x0D, 0x0A] + delimiter, in: body, from: contentStart) else {
                throw .badRequest("invalid_multipart", "a multipart part is not terminated by the boundary")
            }
            if isFilePart(headers) { files.append(Array(body[contentStart..<next])) }
            position = next + 2
        }
        return files
    }

    private static func isFilePart(_ headers: String) -> Bool {
        for line in headers.split(separator: "\r\n") {
            let lower = line.lowercased()
            if lower.hasPrefix("content-disposition:") {
                if lower.contains("filename=") { return true }
                if let name = parameter("name", in: String(line)),
                   ["image", "images", "file", "files", "image[]", "images[]"].contains(name.lowercased()) { return true }
            }
            if lower.hasPrefix("content-type:") && lower.contains("image/") { return true }
        }
        return false
    }

    /// A `key=value` or `key="value"` parameter of a header value.
    static func parameter(_ key: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, String(kv[0]).trimmingSpaces().lowercased() == key else { continue }
            var v = String(kv[1]).trimmingSpaces()
            if v.hasPrefix("\"") && v.hasSuffix("\"") && v.count >= 2 { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var i = start
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
