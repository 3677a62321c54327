// A small YAML subset, enough for Config/loupe.yaml and nothing more: block mappings nested by
// indentation, scalars (plain, 'single' or "double" quoted), `#` comments, block sequences
// (`- item`) and flow sequences (`[a, b]`) of scalars. Anchors, tags, multi-line scalars and
// flow mappings are refused with a message naming the line. (Yams would do all of YAML, but it
// imports full Foundation, which costs the server ≈8 MB of RSS; see DESIGN §1.)

/// Flattens a YAML document into dotted keys: `server:\n  port: 8080` → `["server.port": "8080"]`.
/// Sequences become comma-joined values (`[1, 2]` → "1,2"). A key given twice at the same place is an error.
struct MiniYAML {
    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    static func flatten(_ text: String) throws -> [(key: String, value: String, line: Int)] {
        var result: [(key: String, value: String, line: Int)] = []
        // Stack of (indent, key path) for the open mappings.
        var stack: [(indent: Int, path: String)] = [(-1, "")]
        var pendingSequenceKey: (path: String, indent: Int, line: Int, items: [String])?
        // Every key path seen so far (leaves and mapping parents) with its line: a key given twice in one
        // file is refused, as a careful YAML loader does, instead of the later value silently winning
        // (two `port:` lines) or two `models:` sections silently merging.
        var seen: [String: Int] = [:]

        /// Ends a key that had no inline value: a list, an empty value, or (when the next line is
        /// indented deeper) the parent of a nested mapping, which yields nothing itself.
        func flushSequence(nextIndent: Int) {
            if let seq = pendingSequenceKey {
                if !seq.items.isEmpty || nextIndent <= seq.indent {
                    result.append((seq.path, seq.items.joined(separator: ","), seq.line))
                }
                pendingSequenceKey = nil
            }
        }

        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, rawLine) in lines.enumerated() {
            let lineNumber = index + 1
            var line = String(rawLine)
            if line.hasSuffix("\r") { line.removeLast() }
            line = stripComment(line)
            if line.allSatisfy({ $0 == " " }) { continue }
            if line.contains("\t") && line.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t") {
                throw ParseError(line: lineNumber, message: "tabs are not allowed for indentation")
            }
            let indent = line.prefix(while: { $0 == " " }).count
            let content = String(line.dropFirst(indent)).trimmingTrailingSpaces()
            if content == "---" { continue }

            if content.hasPrefix("- ") || content == "-" {
                guard var seq = pendingSequenceKey, indent >= seq.indent else {
                    throw ParseError(line: lineNumber, message: "a list item must follow a key that has no value")
                }
                let item = String(content.dropFirst(1)).trimmingLeadingSpaces()
                seq.items.append(try scalar(item, line: lineNumber))
                pendingSequenceKey = seq
                continue
            }
            flushSequence(nextIndent: indent)

            guard let colon = findKeyColon(content) else {
                throw ParseError(line: lineNumber, message: "expected 'key: value', found '\(content)'")
            }
            let key = try scalar(String(content[..<colon]).trimmingTrailingSpaces(), line: lineNumber)
            guard !key.isEmpty else { throw ParseError(line: lineNumber, message: "empty key") }
            let rest = String(content[content.index(after: colon)...]).trimmingLeadingSpaces()

            while let top = stack.last, top.indent >= indent { stack.removeLast() }
            guard let parent = stack.last else { throw ParseError(line: lineNumber, message: "bad indentation") }
            let path = parent.path.isEmpty ? key : parent.path + "." + key
            if let first = seen[path] {
                throw ParseError(line: lineNumber, message: "the key '\(path)' is given twice, on line \(first) and on line \(lineNumber); give it once")
            }
            seen[path] = lineNumber

            if rest.isEmpty {
                // A nested mapping or a block sequence follows.
                stack.append((indent, path))
                pendingSequenceKey = (path, indent, lineNumber, [])
                continue
            }
            if rest.hasPrefix("[") {
                guard rest.hasSuffix("]") else { throw ParseError(line: lineNumber, message: "unterminated '['") }
                let inner = rest.dropFirst().dropLast()
                let items = try inner.split(separator: ",").map {
                    try scalar(String($0).trimmingLeadingSpaces().trimmingTrailingSpaces(), line: lineNumber)
                }
                result.append((path, items.joined(separator: ","), lineNumber))
                continue
            }
            if rest.hasPrefix("{") || rest.hasPrefix("&") || rest.hasPrefix("*") || rest.hasPrefix("!")
                || rest.hasPrefix("|") || rest.hasPrefix(">") {
                throw ParseError(line: lineNumber, message: "this YAML feature is not supported here: '\(rest)'")
            }
            result.append((path, try scalar(rest, line: lineNumber), lineNumber))
        }
        flushSequence(nextIndent: -1)
        return result
    }

    /// The colon that ends a key: the first ": " or a trailing ":" outside quotes.
    private static func findKeyColon(_ s: String) -> String.Index? {
        var quote: Character?
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == ":" {
                let next = s.index(after: i)
                if next == s.endIndex || s[next] == " " { return i }
            }
            i = s.index(after: i)
        }
        return nil
    }

    private static func stripComment(_ line: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for (offset, c) in line.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" && (previous == " " || offset == 0) {
                return String(line.prefix(offset))
            }
            previous = c
        }
        return line
    }

    private static func scalar(_ s: String, line: Int) throws -> String {
        if s.hasPrefix("\"") {
            guard s.count >= 2, s.hasSuffix("\"") else { throw ParseError(line: line, message: "unterminated string") }
            var out = ""
            var escaped = false
            for c in s.dropFirst().dropLast() {
                if escaped {
                    switch c {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    default: out.append(c)
                    }
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else {
                    out.append(c)
                }
            }
            return out
        }
        if s.hasPrefix("'") {
            guard s.count >= 2, s.hasSuffix("'") else { throw ParseError(line: line, message: "unterminated string") }
            return String(s.dropFirst().dropLast()).replacingOccurrences("''", "'")
        }
        if s == "~" || s == "null" { return "" }
        return s
    }
}
