/// Everything the request parser can reject. One flat enum: each case knows its HTTP status, a
/// stable machine code (used in the JSON error body and in metrics labels) and a human sentence.
/// Every one of them means "answer with this status, `Connection: close`, and stop reading":
/// after a parse error the framing of the connection can no longer be trusted.
public enum HTTPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    // 414 / 431 / 413: limits (HTTPParserLimits)
    case requestLineTooLong(limit: Int)
    case headerSectionTooLarge(limit: Int)
    case tooManyHeaders(limit: Int)
    case bodyTooLarge(limit: Int)

    // 400: request line
    case invalidRequestLine
    case invalidMethod
    case invalidTarget
    case invalidVersion
    case invalidPercentEncoding

    // 400: line endings and field syntax
    case bareLineFeed
    case bareCarriageReturn
    case invalidHeaderName
    case whitespaceBeforeColon
    case obsoleteLineFolding
    case invalidHeaderValue

    // 400: Host
    case missingHost
    case duplicateHost
    case invalidHost

    // 400 / 501: message framing (where request smuggling lives)
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case transferEncodingInHTTP10
    case chunkedNotFinal
    case unsupportedTransferCoding
    case invalidChunkSize
    case chunkSizeOverflow
    case invalidChunkExtension
    case chunkLineTooLong(limit: Int)
    case invalidChunkTerminator

    // 501 / 505 / 417
    case methodNotImplemented
    case unsupportedVersion
    case unsupportedExpectation

    /// The status to answer with.
    public var status: Int {
        switch self {
        case .requestLineTooLong: 414
        case .headerSectionTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferCoding, .methodNotImplemented: 501
        case .unsupportedVersion: 505
        case .unsupportedExpectation: 417
        default: 400
        }
    }

    /// Stable snake_case code for the JSON body and for metrics labels (bounded set).
    public var code: String {
        switch self {
        case .requestLineTooLong: "request_line_too_long"
        case .headerSectionTooLarge: "header_section_too_large"
        case .tooManyHeaders: "too_many_headers"
        case .bodyTooLarge: "body_too_large"
        case .invalidRequestLine: "invalid_request_line"
        case .invalidMethod: "invalid_method"
        case .invalidTarget: "invalid_target"
        case .invalidVersion: "invalid_version"
        case .invalidPercentEncoding: "invalid_percent_encoding"
        case .bareLineFeed: "bare_line_feed"
        case .bareCarriageReturn: "bare_carriage_return"
        case .invalidHeaderName: "invalid_header_name"
        case .whitespaceBeforeColon: "whitespace_before_colon"
        case .obsoleteLineFolding: "obsolete_line_folding"
        case .invalidHeaderValue: "invalid_header_value"
        case .missingHost: "missing_host"
        case .duplicateHost: "duplicate_host"
        case .invalidHost: "invalid_host"
        case .invalidContentLength: "invalid_content_length"
        case .conflictingContentLength: "conflicting_content_length"
        case .contentLengthWithTransferEncoding: "content_length_with_transfer_encoding"
        case .transferEncodingInHTTP10: "transfer_encoding_in_http10"
        case .chunkedNotFinal: "chunked_not_final"
        case .unsupportedTransferCoding: "unsupported_transfer_coding"
        case .invalidChunkSize: "invalid_chunk_size"
        case .chunkSizeOverflow: "chunk_size_overflow"
        case .invalidChunkExtension: "invalid_chunk_extension"
        case .chunkLineTooLong: "chunk_line_too_long"
        case .invalidChunkTerminator: "invalid_chunk_terminator"
        case .methodNotImplemented: "method_not_implemented"
        case .unsupportedVersion: "unsupported_http_version"
        case .unsupportedExpectation: "unsupported_expectation"
        }
    }

    public var description: String {
        switch self {
        case .requestLineTooLong(let limit):
            "The request line is longer than the limit of \(limit) bytes."
        case .headerSectionTooLarge(let limit):
            "The header section is larger than the limit of \(limit) bytes."
        case .tooManyHeaders(let limit):
            "The request has more than the limit of \(limit) header fields."
        case .bodyTooLarge(let limit):
            "The request body is larger than the limit of \(limit) bytes."
        case .invalidRequestLine:
            "The request line is malformed; expected 'METHOD SP target SP HTTP/1.1' ending in CRLF."
        case .invalidMethod:
            "The request method is not a valid token."
        case .invalidTarget:
            "The request target is malformed; expected an origin-form path like '/predict?top_k=3' or an absolute http(s) URI."
        case .invalidVersion:
            "The HTTP version is malformed; expected 'HTTP/1.1' or 'HTTP/1.0'."
        case .invalidPercentEncoding:
            "The request target has an invalid percent-encoding, an encoded NUL, or bytes that are not UTF-8 once decoded."
        case .bareLineFeed:
            "A line ends in a bare LF; lines must end in CRLF."
        case .bareCarriageReturn:
            "The request contains a CR that is not followed by LF."
        case .invalidHeaderName:
            "A header field name is empty or not a valid token, or a field line has no colon."
        case .whitespaceBeforeColon:
            "A header field has whitespace between its name and the colon."
        case .obsoleteLineFolding:
            "A header field line starts with whitespace (obsolete line folding is not accepted)."
        case .invalidHeaderValue:
            "A header field value contains a control character (such as NUL)."
        case .missingHost:
            "An HTTP/1.1 request must carry a Host header field."
        case .duplicateHost:
            "The request carries more than one Host header field."
        case .invalidHost:
            "The Host header field is not a valid host[:port]."
        case .invalidContentLength:
            "The Content-Length header field is not a non-negative decimal integer."
        case .conflictingContentLength:
            "The request carries Content-Length values that differ."
        case .contentLengthWithTransferEncoding:
            "The request carries both Content-Length and Transfer-Encoding."
        case .transferEncodingInHTTP10:
            "An HTTP/1.0 request must not carry Transfer-Encoding."
        case .chunkedNotFinal:
            "Transfer-Encoding must end with 'chunked', applied exactly once."
        case .unsupportedTransferCoding:
            "The request uses a transfer coding other than 'chunked', which this server does not implement."
        case .invalidChunkSize:
            "A chunk size is not a hexadecimal number."
        case .chunkSizeOverflow:
            "A chunk size is too large to represent."
        case .invalidChunkExtension:
            "A chunk extension is malformed."
        case .chunkLineTooLong(let limit):
            "A chunk-size line (with extensions) is longer than the limit of \(limit) bytes."
        case .invalidChunkTerminator:
            "Chunk data is not followed by CRLF."
        case .methodNotImplemented:
            "The request method is not implemented by this server."
        case .unsupportedVersion:
            "The HTTP version is not supported; this server speaks HTTP/1.1 and HTTP/1.0."
        case .unsupportedExpectation:
            "The Expect header field holds an expectation other than '100-continue'."
        }
    }
}
