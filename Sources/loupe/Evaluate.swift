import ArgumentParser

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not built yet.")
    func run() throws { throw ValidationError("'loupe evaluate' is not built yet") }
}
