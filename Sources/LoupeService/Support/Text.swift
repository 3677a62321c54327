// String helpers the service uses without Foundation: trimming spaces and tabs (configuration
// values, header lists, version policies) and replacing a substring.

extension String {
    /// Without leading spaces and tabs.
    func trimmingLeadingSpaces() -> String { String(drop(while: { $0 == " " || $0 == "\t" })) }
    /// Without trailing spaces and tabs.
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return String(s)
    }
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String { trimmingLeadingSpaces().trimmingTrailingSpaces() }
    /// Every occurrence of `target` replaced (left to right, not overlapping).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        out += rest
        return out
    }
}
