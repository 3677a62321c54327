import Glibc
import Testing
@testable import LoupeHTTP

/// Inputs from fuzzing (Fuzz/run.sh). Each crash or invariant failure the fuzzer finds is added
/// here with the invariant it broke. So far the fuzzer has found no parser crash; the cases
/// below are the seed corpus (replayed under the fuzzer's split invariant) and the input it
/// produced when a response-splitting bug was planted in the writer on purpose (to prove the
/// fuzz check works), kept so that filter can never regress.
struct ParserFuzzRegressionTests {
    static let corpusDirectory: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        return path + "/Fuzz/corpus"
    }()

    static func corpusFiles() -> [String] {
        guard let dir = opendir(corpusDirectory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8] {
        guard let f = fopen(path, "rb") else { return [] }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    static func outcome(_ input: [UInt8], cuts: [Int]) -> ([HTTPPart], HTTPParseError?) {
        do { return (try parseAll(input, cuts: cuts), nil) } catch { return ([], error) }
    }

    @Test func seedCorpusIsIndependentOfReads() {
        let files = Self.corpusFiles()
        #expect(files.count >= 10, "seed corpus not found at \(Self.corpusDirectory)")
        for name in files {
            let input = Array(Self.read(Self.corpusDirectory + "/" + name).dropFirst())  // first byte: the fuzzer's cut
            let whole = Self.outcome(input, cuts: [])
            for cut in stride(from: 0, through: input.count, by: 7) {
                let split = Self.outcome(input, cuts: [cut])
                #expect(split.0 == whole.0 && split.1 == whole.1, "\(name) split at \(cut)")
            }
        }
    }

    /// The planted-bug input: a percent-encoded CR LF in an absolute-form path. Decoding it is
    /// correct; echoing it into a response header must not split the response.
    @Test func encodedCRLFInPathCannotSplitAResponse() throws {
        let raw = "GEQ http://_//_%0a)))%0D%0A080com:8080/a/b?c HTTP/1.1\r\nHost: \r\n\r\n"
        let parts = try parseAll(bytes(raw))
        guard case .head(let head)? = parts.first else { Issue.record("no head"); return }
        #expect(head.path.contains("\r\n"))
        var out: [UInt8] = []
        ResponseWriter(dates: fixedDates).write(HTTPResponse(status: 200, headers: HTTPHeaders([("X-Path", head.path)])),
                                                context: HTTPResponseContext(head: head), into: &out)
        let (lines, _) = splitResponse(out)
        #expect(!lines.contains { $0.hasPrefix("X-Path") })
        #expect(!text(out).contains("080com"))
    }
}
