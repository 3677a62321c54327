import ArgumentParser
import LoupeService

@main
struct Loupe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loupe",
        abstract: "Train, evaluate and serve a small CNN for 28×28 grayscale images.",
        version: loupeVersion,
        subcommands: [Train.self, Evaluate.self, Predict.self, Explain.self, Inspect.self, Import.self, Export.self, Quantize.self, Prune.self, Serve.self, Healthcheck.self]
    )

    /// A mistyped subcommand gets "did you mean" instead of a bare "unexpected argument".
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, !first.hasPrefix("-"), first != "help" {
            let names = configuration.subcommands.compactMap { $0.configuration.commandName ?? String(describing: $0).lowercased() }
            if !names.contains(first) {
                let best = names.map { ($0, editDistance($0, first)) }.min { $0.1 < $1.1 }
                var message = "Error: '\(first)' is not a loupe command."
                if let (name, distance) = best, distance <= 2 { message += " Did you mean '\(name)'?" }
                Terminal.error(message + "\n" + helpMessage(columns: 100))
                exit(withError: ExitCode(64))
            }
        }
        main(arguments)
    }

    /// Levenshtein distance, for suggestions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(1, b.count) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
